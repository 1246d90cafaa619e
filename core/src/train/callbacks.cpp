#include "cohort/core/train/callbacks.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cohort/core/serialize.h"

namespace cohort {

namespace {
// A state dict with every tensor on the CPU (the same tensors where they already are), for save().
StateDict on_cpu(const StateDict& state) {
  StateDict out;
  for (const auto& [name, t] : state) out[name] = t.to(Device::cpu());
  return out;
}
}  // namespace

ModelCheckpoint::ModelCheckpoint(std::string dir, int64_t every_steps, int keep)
    : dir_(std::move(dir)), every_(every_steps), keep_(keep) {
  COHORT_CHECK(every_steps > 0 && keep > 0, ValueError, "ModelCheckpoint: every_steps and keep must be positive");
  std::filesystem::create_directories(dir_);
}

void ModelCheckpoint::save_now(TrainState& s) {
  if (s.step == last_step_) return;
  char name[64];
  std::snprintf(name, sizeof(name), "step_%08lld", static_cast<long long>(s.step));
  const std::string base = dir_ + "/" + name;
  save(s.optimizer->state_dict(), base + ".optim");
  save(on_cpu(s.model->state_dict()), base + ".model");  // written last: its presence marks a whole save
  last_ = base + ".model";
  last_step_ = s.step;
  saved_.push_back(base);
  while (static_cast<int>(saved_.size()) > keep_) {
    std::filesystem::remove(saved_.front() + ".model");
    std::filesystem::remove(saved_.front() + ".optim");
    saved_.erase(saved_.begin());
  }
}

void ModelCheckpoint::on_batch_end(TrainState& s) {
  if (s.step % every_ == 0) save_now(s);
}

void ModelCheckpoint::on_train_end(TrainState& s) { save_now(s); }

EarlyStopping::EarlyStopping(std::string monitor, int patience, double min_delta)
    : monitor_(std::move(monitor)), patience_(patience), min_delta_(min_delta), best_(INFINITY) {}

void EarlyStopping::on_epoch_end(TrainState& s) {
  auto it = s.epoch_metrics.find(monitor_);
  COHORT_CHECK(it != s.epoch_metrics.end(), ValueError, "EarlyStopping: metric '", monitor_,
               "' is not available (is a validation loader set for val_* metrics?)");
  if (it->second < best_ - min_delta_) {
    best_ = it->second;
    bad_epochs_ = 0;
  } else if (++bad_epochs_ >= patience_) {
    s.stop_training = true;
    stopped_epoch_ = s.epoch;
  }
}

MetricsLogger::MetricsLogger(std::string path, Format format, int64_t every_steps)
    : path_(std::move(path)), format_(format), every_(every_steps) {
  file_ = std::fopen(path_.c_str(), "w");
  COHORT_CHECK(file_ != nullptr, ValueError, "MetricsLogger: cannot write '", path_, "'");
}

MetricsLogger::~MetricsLogger() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLogger::write(const char* kind, TrainState& s, const Metrics& m) {
  static const char* kColumns[] = {"loss", "accuracy", "lr", "val_loss", "val_accuracy"};
  if (format_ == Format::csv) {
    if (!header_written_) {
      std::fprintf(file_, "kind,epoch,step,samples_per_second");
      for (const char* c : kColumns) std::fprintf(file_, ",%s", c);
      std::fprintf(file_, "\n");
      header_written_ = true;
    }
    std::fprintf(file_, "%s,%lld,%lld,%.2f", kind, static_cast<long long>(s.epoch), static_cast<long long>(s.step),
                 s.samples_per_second);
    for (const char* c : kColumns) {
      auto it = m.find(c);
      if (it != m.end()) {
        std::fprintf(file_, ",%.6g", it->second);
      } else {
        std::fprintf(file_, ",");
      }
    }
    std::fprintf(file_, "\n");
  } else {
    std::fprintf(file_, "{\"kind\": \"%s\", \"epoch\": %lld, \"step\": %lld, \"samples_per_second\": %.2f", kind,
                 static_cast<long long>(s.epoch), static_cast<long long>(s.step), s.samples_per_second);
    for (const auto& [k, v] : m) std::fprintf(file_, ", \"%s\": %.6g", k.c_str(), v);
    std::fprintf(file_, "}\n");
  }
  std::fflush(file_);
}

void MetricsLogger::on_batch_end(TrainState& s) {
  if (s.step % every_ != 0) return;
  Metrics m = s.epoch_metrics;
  m["loss"] = s.batch_loss;
  write("batch", s, m);
}

void MetricsLogger::on_epoch_end(TrainState& s) { write("epoch", s, s.epoch_metrics); }

}  // namespace cohort
