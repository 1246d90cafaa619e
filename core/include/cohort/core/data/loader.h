// DataLoader: batches from a Dataset in a Sampler's order, prepared ahead on a background thread,
// with a position (epoch, batch) that can be saved and restored mid-epoch.
//
//   DataLoader loader(dataset, {.batch_size = 128, .shuffle = true, .seed = 1});
//   for (int64_t epoch = 0; epoch < 3; ++epoch) {
//     loader.start_epoch(epoch);
//     Batch b;
//     while (loader.next(&b)) { ... }
//   }
//
// On a GPU, set pin_memory and move each batch with b.to(device, /*non_blocking=*/true): the
// worker pins the next batches while the GPU trains on this one.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "cohort/core/data/dataset.h"

namespace cohort {

struct DataLoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;       // used when no sampler is given
  uint64_t seed = 0;
  bool drop_last = false;     // drop a final incomplete batch
  int64_t prefetch = 2;       // batches prepared ahead; 0 = prepare in next() on the caller's thread
  // Batches in page-locked host memory, copied there by the worker, so that the training thread's
  // batch.to(Device::cuda(i), true) is an asynchronous copy. Needs a GPU (a DeviceError otherwise).
  bool pin_memory = false;
};

// Where a loader is: the epoch and how many batches of it were handed out.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options,
             std::shared_ptr<const Sampler> sampler = nullptr);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins an epoch at its first batch (or at `position.batch` through restore()).
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false when the epoch is over.
  bool next(Batch* batch);
  int64_t batches_per_epoch() const;
  LoaderPosition position() const { return {epoch_, batch_}; }
  // Continues from a saved position: the next next() returns batch `position.batch` of that epoch.
  void restore(LoaderPosition position);
  const DataLoaderOptions& options() const { return options_; }

 private:
  void start_at(int64_t epoch, int64_t batch);
  void stop_worker();
  Batch make_batch(int64_t b) const;

  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<const Sampler> sampler_;
  DataLoaderOptions options_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0, batch_ = 0;
  bool started_ = false;

  // Background preparation: the worker fills queue_ with batches [batch_, end) in order.
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace cohort
