// Errors raised by communicators and stores. They extend core's typed errors (cohort::Error), so a
// main() that catches cohort::Error reports these too.
#pragma once

#include "cohort/core/error.h"

namespace cohort {

// A collective or store operation failed: a peer gave up, the library reported an error, or the
// communicator is unusable after an earlier failure. The message names the operation and rank.
class CommError : public Error { using Error::Error; };

// A collective, point-to-point or store operation did not finish in time. The message says which
// collective (with its sequence number) and which ranks never arrived, e.g.
//   mpi group 'world': all_reduce #183 timed out after 1000 ms on rank 0 of 4: rank 3 never
//   arrived (it finished all_reduce #182 and has not started #183); ranks 0, 1, 2 arrived
class TimeoutError : public CommError { using CommError::CommError; };

}  // namespace cohort
