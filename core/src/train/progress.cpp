#include "cohort/core/train/progress.h"

#include <unistd.h>

namespace cohort {

namespace {
std::string clock_str(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}
}  // namespace

ProgressBar::ProgressBar(int64_t total, std::string label, std::FILE* out, int64_t every)
    : total_(total), label_(std::move(label)), out_(out), every_(every > 0 ? every : 1),
      terminal_(::isatty(::fileno(out)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(int64_t done, const std::string& extra, double rate) {
  const auto now = std::chrono::steady_clock::now();
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1;
  if (terminal_) {
    // Redraw at most ~10 times a second, and always on the last unit.
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(out_, "\r%s[%s] %lld/%lld  %s  ETA %s\033[K", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), extra.c_str(), clock_str(eta).c_str());
  } else {
    if (done % every_ != 0 && done != total_ && done != 1) return;
    std::fprintf(out_, "%s%lld/%lld  %s  ETA %s\n", label_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), extra.c_str(), clock_str(eta).c_str());
  }
  std::fflush(out_);
}

void ProgressBar::finish(const std::string& extra) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (terminal_) std::fprintf(out_, "\n");
  std::fprintf(out_, "%sdone in %s  %s\n", label_.c_str(), clock_str(elapsed).c_str(), extra.c_str());
  std::fflush(out_);
}

}  // namespace cohort
