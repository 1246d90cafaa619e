#pragma once
// The stand-alone run directory's rank register: each rank's cohort-run leaves its pid there
// (<run dir>/rank.<rank>.pid), so that the parent can hand a signal to every rank itself.
//
// Why not through mpirun: mpirun passes SIGTERM on, but as soon as the first rank has ended it
// aborts the job and SIGKILLs the rest, so a program that takes a moment to stop (to save a
// checkpoint, say) is killed mid-way. Delivered by the parent, every rank's program gets its
// signal at once and ends in its own time.

#include <sys/types.h>

#include <string>
#include <vector>

namespace cohort::run {

void register_rank(const std::string& run_dir, int rank, pid_t pid);
std::vector<pid_t> registered_ranks(const std::string& run_dir);

}  // namespace cohort::run
