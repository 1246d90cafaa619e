// Callbacks for fit(): hooks at the start and end of training, epochs and batches.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "cohort/core/train/fit.h"

namespace cohort {

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainState&) {}
  virtual void on_epoch_begin(TrainState&) {}
  virtual void on_batch_begin(TrainState&) {}
  virtual void on_batch_end(TrainState&) {}
  virtual void on_epoch_end(TrainState&) {}  // epoch_metrics then hold val_* too
  virtual void on_train_end(TrainState&) {}
};

// Saves the model (and optimizer) state every `every_steps` steps to dir/step_<N>.model (and
// .optim), and at the end of training; keeps the last `keep` of them.
class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string dir, int64_t every_steps, int keep = 3);
  void on_batch_end(TrainState& s) override;
  void on_train_end(TrainState& s) override;
  std::string last_path() const { return last_; }

 private:
  void save_now(TrainState& s);
  std::string dir_;
  int64_t every_;
  int keep_;
  std::vector<std::string> saved_;
  std::string last_;
  int64_t last_step_ = -1;
};

// Stops training when `monitor` (e.g. "val_loss", lower is better) has not improved by min_delta
// for `patience` epochs.
class EarlyStopping : public Callback {
 public:
  EarlyStopping(std::string monitor = "val_loss", int patience = 2, double min_delta = 0.0);
  void on_epoch_end(TrainState& s) override;
  int64_t stopped_epoch() const { return stopped_epoch_; }

 private:
  std::string monitor_;
  int patience_;
  double min_delta_, best_;
  int bad_epochs_ = 0;
  int64_t stopped_epoch_ = -1;
};

// Steps an LR schedule after every batch (the same as FitOptions::scheduler, as a callback).
class LRScheduleCallback : public Callback {
 public:
  explicit LRScheduleCallback(LRScheduler& scheduler) : scheduler_(scheduler) {}
  void on_batch_end(TrainState&) override { scheduler_.step(); }

 private:
  LRScheduler& scheduler_;
};

// Appends one row per logged step (every `every_steps`) and per epoch end: CSV with a header, or
// JSON lines. Columns: kind (batch/epoch), epoch, step, loss, accuracy, lr, samples_per_second,
// and val_* at epoch ends.
class MetricsLogger : public Callback {
 public:
  enum class Format { csv, json_lines };
  MetricsLogger(std::string path, Format format, int64_t every_steps = 1);
  ~MetricsLogger() override;
  void on_batch_end(TrainState& s) override;
  void on_epoch_end(TrainState& s) override;

 private:
  void write(const char* kind, TrainState& s, const Metrics& m);
  std::string path_;
  Format format_;
  int64_t every_;
  std::FILE* file_ = nullptr;
  bool header_written_ = false;
};

}  // namespace cohort
