#include "example.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cohort/env/environment.h"

namespace cohort::examples {

void add_common_flags(CLI::App& app, CommonArgs& a) {
  app.add_option("--data", a.data, "data file(s) or directory; without it a small synthetic data set is generated");
  app.add_option("--steps", a.steps, "optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", a.batch_size, "examples per step (per rank)")->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "random seed (initialisation, data order, dropout)");
  app.add_option("--threads", a.threads, "CPU threads for the ops")->check(CLI::PositiveNumber);
  app.add_option("--lr", a.lr, "learning rate (default: the example's own)");
  app.add_option("--log-every", a.log_every, "print the loss every N steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup-steps", a.warmup_steps, "steps left out of the samples/s figure")->check(CLI::NonNegativeNumber);
  app.add_flag("--profile", a.profile, "after training, print the time per op (after the warm-up) to stderr");
  app.add_option("--strategy", a.strategy,
                 "none; ddp (data parallel over the ranks of cohort-run/mpirun/srun, gradients all-reduced in "
                 "buckets during backward); mirrored (one replica per core in this process, and data parallel "
                 "across processes)")
      ->check(CLI::IsMember({"none", "ddp", "mirrored"}))
      ->capture_default_str();
  app.add_option("--replicas", a.replicas, "mirrored: replicas in this process (0: one per usable core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--bucket-mb", a.bucket_mb, "ddp: gradient bucket size in MiB")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--no-overlap", a.no_overlap, "ddp: all-reduce the gradients only after backward (for measurement)");
  app.add_option("--save", a.save, "save the final parameters to this file (rank 0)");
  app.add_option("--device", a.device, "cpu, or cuda: the GPU LOCAL_RANK % (number of GPUs)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--amp", a.amp,
                 "mixed precision on a GPU: none; bf16 (autocast); f16 (autocast and dynamic loss scaling)")
      ->check(CLI::IsMember({"none", "bf16", "f16"}))
      ->capture_default_str();
}

void setup(const CommonArgs& args) {
  set_num_threads(args.threads);
  manual_seed(args.seed);
}

DataLoaderOptions loader_options(const CommonArgs& args) {
  DataLoaderOptions o;
  o.batch_size = args.batch_size;
  o.shuffle = true;
  o.seed = args.seed;
  o.drop_last = true;
  return o;
}

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cohort-" + name + "-" + std::to_string(static_cast<long>(::getpid())));
  std::filesystem::create_directories(dir);
  return dir.string();
}

double param_norm(const Module& model) {
  NoGradGuard no_grad;
  double total = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const Tensor v = p.to(Device::cpu()).to(DType::f64);
    total += (v * v).sum().item();
  }
  return std::sqrt(total);
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void Throughput::step_done(int64_t step, int64_t samples) {
  if (step == warmup_ && device_.is_cuda()) cuda::synchronize(device_.index);  // the warm-up's work is done
  const auto now = std::chrono::steady_clock::now();
  if (step == warmup_) {
    start_ = now;
    if (profile_) Profiler::start();
  } else if (step > warmup_) {
    samples_ += samples;
    seconds_ = std::chrono::duration<double>(now - start_).count();
  }
}

void Throughput::finish() {
  if (device_.is_cuda() && samples_ > 0) {  // stop the clock when the queued steps are done
    cuda::synchronize(device_.index);
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  if (profile_ && Profiler::enabled()) std::fprintf(stderr, "%s", Profiler::stop().table().c_str());
}

double Throughput::per_second() const { return seconds_ > 0 ? static_cast<double>(samples_) / seconds_ : 0; }

void print_summary(int64_t step, double loss, double norm, const std::string& extra_json) {
  std::printf("{\"step\": %lld, \"loss\": %.6f, \"param_norm\": %.6f%s%s}\n", static_cast<long long>(step), loss,
              norm, extra_json.empty() ? "" : ", ", extra_json.c_str());
  std::fflush(stdout);
}

namespace {

// --device: cuda means the GPU LOCAL_RANK % (GPUs on this node), so that the ranks a launcher starts
// on one node share its GPUs one each.
Device resolve_device(const CommonArgs& args, const env::Environment& environment) {
  if (args.device == "cpu") return Device::cpu();
  COHORT_CHECK(cuda::is_available(), DeviceError, "--device cuda: there is ", cuda::unavailable_reason(),
               ". Run on a machine with an NVIDIA GPU and its driver (with cohort built with CUDA), or use "
               "--device cpu");
  const int local_rank = env::get_int(environment, "LOCAL_RANK", 0).value_or(0);
  return Device::cuda(local_rank % cuda::device_count());
}

// A copy of `state` with every tensor on the CPU, for save().
StateDict on_cpu(const StateDict& state) {
  StateDict out;
  for (const auto& [name, t] : state) out[name] = t.to(Device::cpu());
  return out;
}

}  // namespace

Strategy::Strategy(const CommonArgs& args, int* argc, char*** argv) : args_(args) {
  const env::Environment environment = env::Environment::from_process();
  device_ = resolve_device(args, environment);
  if (device_.is_cuda()) cuda::set_device(device_.index);  // before anything else: no context on cuda:0
  COHORT_CHECK(args.amp == "none" || device_.is_cuda(), ValueError, "--amp ", args.amp,
               " needs --device cuda (autocast runs on a GPU); use --amp none on the CPU");
  COHORT_CHECK(args.strategy != "mirrored" || device_.is_cpu(), ValueError,
               "--strategy mirrored runs one replica per CPU thread; on a GPU use --strategy none or ddp (one "
               "process per GPU)");
  if (args.amp == "bf16") mixed_precision_.autocast = DType::bf16;
  if (args.amp == "f16") {
    scaler_ = std::make_unique<GradScaler>();
    mixed_precision_.autocast = DType::f16;
    mixed_precision_.grad_scaler = scaler_.get();
  }
  if (args.strategy == "none") return;
  if (device_.is_cuda()) {
    // Gradients live on the GPU: the group's device communicator is NCCL (the NCCL id handed out by
    // MPI when the build has it, else through the TCP store at MASTER_ADDR:MASTER_PORT).
    parallel::ProcessGroupConfig config;
    config.backend = "nccl";
    config.local_rank = device_.index;
    if (parallel::mpi_backend_built()) {
      mpi_ = std::make_unique<parallel::MpiSession>(argc, argv);
    } else {
      config.rank = env::get_int(environment, "RANK", 0).value_or(0);
      config.world_size = env::get_int(environment, "WORLD_SIZE", 1).value_or(1);
      config.master_addr = environment.get("MASTER_ADDR").value_or("");
      config.master_port = env::get_int(environment, "MASTER_PORT", 0).value_or(0);
    }
    group_ = parallel::make_process_group(config);
    return;
  }
  if (parallel::mpi_backend_built()) {
    mpi_ = std::make_unique<parallel::MpiSession>(argc, argv);
    group_ = parallel::make_mpi_world_group("world");
  } else {
    // Without MPI there is only this process; refuse a launch that started several.
    const auto world = env::get_int(environment, "WORLD_SIZE", 1);
    COHORT_CHECK(!world || *world == 1, ValueError, "--strategy ", args.strategy, ": WORLD_SIZE is ", *world,
                 " but this build has no MPI, so ranks cannot talk to each other; rebuild with MPI "
                 "(COHORT_WITH_MPI=ON) or run one process");
    local_ = std::make_unique<parallel::LocalWorld>(1, "world");
    group_ = local_->group(0);
  }
  if (args.strategy == "mirrored" && args.threads != 1) {
    COHORT_THROW(ValueError, "--strategy mirrored runs one replica per thread; use --replicas N rather than --threads ",
                 args.threads);
  }
}

Strategy::~Strategy() {
  ddp_.reset();
  mirrored_.reset();
  inner_.reset();
  group_ = parallel::ProcessGroup();  // communicators go before MPI does
}

int64_t Strategy::process_batch(int64_t batch_size) const {
  return mirrored_ ? batch_size * mirrored_->replicas() : batch_size;
}

std::unique_ptr<DataLoader> Strategy::loader(std::shared_ptr<const Dataset> data, DataLoaderOptions options) const {
  if (args_.strategy == "mirrored") {
    const int replicas = args_.replicas > 0 ? args_.replicas : parallel::usable_cores();
    options.batch_size *= replicas;
  }
  options.pin_memory = device_.is_cuda();
  std::shared_ptr<const Sampler> sampler;
  if (world() > 1) {
    sampler = std::make_shared<DistributedSampler>(data->size(), rank(), world(), options.shuffle, options.seed,
                                                   true);
  }
  return std::make_unique<DataLoader>(std::move(data), options, std::move(sampler));
}

std::shared_ptr<Module> Strategy::wrap(const std::function<std::shared_ptr<Module>()>& make_model) {
  if (args_.strategy == "ddp") {
    inner_ = make_model();
    inner_->to(device_);
    parallel::DdpOptions o;
    o.bucket_bytes = static_cast<size_t>(args_.bucket_mb * 1024 * 1024);
    o.first_bucket_bytes = std::min(o.first_bucket_bytes, o.bucket_bytes);
    o.overlap = !args_.no_overlap;
    ddp_ = std::make_shared<parallel::Ddp>(inner_, group_, o);
    return ddp_;
  }
  if (args_.strategy == "mirrored") {
    parallel::MirroredOptions o;
    o.replicas = args_.replicas;
    mirrored_ = std::make_unique<parallel::Mirrored>(make_model, o, group_);
    inner_ = mirrored_->model_ptr();
    return inner_;
  }
  inner_ = make_model();
  inner_->to(device_);
  return inner_;
}

Module& Strategy::inner() { return *inner_; }

StepOutput Strategy::forward_backward(const Batch& batch, const LossFn& loss) {
  if (mirrored_) return mirrored_->forward_backward(batch, loss);
  Module& model = ddp_ ? static_cast<Module&>(*ddp_) : *inner_;
  return forward_backward_step(model, loss, batch, mixed_precision_);
}

void Strategy::optimizer_step(Optimizer& optimizer, double max_norm) {
  Module& model = ddp_ ? static_cast<Module&>(*ddp_) : *inner_;
  cohort::optimizer_step(optimizer, max_norm > 0 ? model.parameters() : std::vector<Tensor>{}, max_norm,
                         mixed_precision_);
}

void Strategy::configure(FitOptions& options, const LossFn& loss) {
  options.mixed_precision = mixed_precision_;
  options.is_main = is_main();
  if (world() > 1) options.average_metric = [this](double v) { return average(v); };
  if (mirrored_) options.forward_backward = mirrored_->step_fn(loss);
}

double Strategy::average(double value) const {
  if (world() == 1) return value;
  Tensor t = from_vector(std::vector<double>{value});
  // A group built for NCCL without MPI has no host communicator: the value travels on the GPU.
  if (!group_.has_host()) t = t.to(group_.device().device());
  group_.all_reduce(t, {parallel::ReduceOp::avg})->wait();
  return t.item<double>();  // on a GPU: copies back after the stream the all-reduce ordered
}

void Strategy::step_done(int64_t step, int64_t warmup_steps) {
  if (!ddp_) return;
  if (step == warmup_steps) wait_at_warmup_ = ddp_->stats().wait_seconds;
  if (step > warmup_steps) ++steps_after_warmup_;
}

std::string Strategy::summary_json() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "\"strategy\": \"%s\", \"world_size\": %d", args_.strategy.c_str(), world());
  std::string s = buf;
  if (mirrored_) s += ", \"replicas\": " + std::to_string(mirrored_->replicas());
  if (ddp_) {
    const double wait = steps_after_warmup_ > 0
                            ? (ddp_->stats().wait_seconds - wait_at_warmup_) * 1e3 / static_cast<double>(steps_after_warmup_)
                            : 0.0;
    std::snprintf(buf, sizeof(buf), ", \"buckets\": %lld, \"overlap\": %s, \"comm_wait_ms_per_step\": %.3f",
                  static_cast<long long>(ddp_->stats().buckets), args_.no_overlap ? "false" : "true", wait);
    s += buf;
  }
  std::snprintf(buf, sizeof(buf), ", \"device\": \"%s\", \"amp\": \"%s\"", device_.str().c_str(), args_.amp.c_str());
  s += buf;
  if (device_.is_cuda()) {
    std::snprintf(buf, sizeof(buf), ", \"peak_gpu_mib\": %.1f",
                  static_cast<double>(cuda::memory_stats(device_.index).peak_allocated) / (1024.0 * 1024.0));
    s += buf;
  }
  return s;
}

void Strategy::save_if_asked() {
  if (args_.save.empty()) return;
  if (is_main()) save(on_cpu(inner_->state_dict()), args_.save);
  if (world() > 1) group_.barrier()->wait();
}

void Strategy::log_step(int64_t step, double loss) {
  if (step != 1 && step % args_.log_every != 0 && step != args_.steps) return;
  const double mean = average(loss);
  if (is_main()) std::printf("step %lld  loss %.4f\n", static_cast<long long>(step), mean);
}

void Strategy::finish(int64_t steps, double loss, const Throughput& throughput, const char* rate_key) {
  const double mean = average(loss);
  save_if_asked();
  char extra[512];
  std::snprintf(extra, sizeof(extra), "\"%s\": %.1f, \"peak_rss_mib\": %.1f, %s", rate_key, throughput.per_second(),
                peak_rss_mib(), summary_json().c_str());
  if (is_main()) print_summary(steps, mean, param_norm(inner()), extra);
}

}  // namespace cohort::examples
