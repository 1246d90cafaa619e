#include "cohort/core/data/loader.h"

#include "cohort/core/cuda.h"

#include "cohort/core/parallel_for.h"
#include "cohort/core/profiler.h"

namespace cohort {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options,
                       std::shared_ptr<const Sampler> sampler)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), options_(options) {
  COHORT_CHECK(dataset_ != nullptr, ValueError, "DataLoader: the dataset is null");
  COHORT_CHECK(options_.batch_size > 0, ValueError, "DataLoader: batch_size must be positive, got ",
               options_.batch_size);
  COHORT_CHECK(options_.prefetch >= 0, ValueError, "DataLoader: prefetch must be >= 0, got ", options_.prefetch);
  COHORT_CHECK(!options_.pin_memory || cuda::is_available(), DeviceError,
               "DataLoader: pin_memory needs a GPU, but there is ", cuda::unavailable_reason(),
               "; set pin_memory = false on machines without one");
  if (!sampler_) {
    if (options_.shuffle) {
      sampler_ = std::make_shared<RandomSampler>(dataset_->size(), options_.seed);
    } else {
      sampler_ = std::make_shared<SequentialSampler>(dataset_->size());
    }
  }
}

DataLoader::~DataLoader() { stop_worker(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = sampler_->length(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

Batch DataLoader::make_batch(int64_t b) const {
  const int64_t begin = b * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  Batch batch = dataset_->get_batch(std::vector<int64_t>(order_.begin() + begin, order_.begin() + end));
  if (options_.pin_memory) {
    batch.data = batch.data.pin_memory();
    batch.target = batch.target.pin_memory();
  }
  return batch;
}

void DataLoader::stop_worker() {
  if (worker_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  queue_.clear();
  error_ = nullptr;
  stop_ = false;
}

void DataLoader::start_at(int64_t epoch, int64_t batch) {
  stop_worker();
  epoch_ = epoch;
  batch_ = batch;
  started_ = true;
  order_ = sampler_->indices(epoch);
  if (options_.prefetch == 0) return;
  // The worker prepares batches in order and blocks while `prefetch` of them are waiting. It runs
  // its ops on one thread so it does not compete with the training thread's thread pool.
  worker_ = std::thread([this, first = batch, end = batches_per_epoch()] {
    set_num_threads(1);
    for (int64_t b = first; b < end; ++b) {
      Batch next;
      try {
        next = make_batch(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < options_.prefetch; });
      if (stop_) return;
      queue_.push_back(std::move(next));
      cv_.notify_all();
    }
  });
}

void DataLoader::start_epoch(int64_t epoch) { start_at(epoch, 0); }

void DataLoader::restore(LoaderPosition position) {
  COHORT_CHECK(position.batch >= 0 && position.batch <= batches_per_epoch(), ValueError,
               "DataLoader: cannot restore to batch ", position.batch, " of an epoch with ", batches_per_epoch(),
               " batches");
  start_at(position.epoch, position.batch);
}

bool DataLoader::next(Batch* batch) {
  detail::profile_mark("(before data)");
  if (!started_) start_epoch(0);
  if (batch_ >= batches_per_epoch()) return false;
  if (options_.prefetch == 0) {
    *batch = make_batch(batch_++);
    return true;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_ != nullptr; });
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  *batch = std::move(queue_.front());
  queue_.pop_front();
  ++batch_;
  cv_.notify_all();
  detail::profile_mark("data loader wait");
  return true;
}

}  // namespace cohort
