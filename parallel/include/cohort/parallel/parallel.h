// cohort/parallel: how ranks cooperate. Communicators (`mpi` for host memory, `nccl` for device
// memory, `local` for ranks as threads), process groups and the Store, and (to come) the
// strategies built on them: Ddp, Fsdp and Mirrored. Built on cohort/core; core never includes
// anything from here (the build enforces it: core's targets do not see this directory).
//
//   cohort::parallel::MpiSession mpi(&argc, &argv);
//   auto world = cohort::parallel::make_mpi_world_group();
//   world.all_reduce(grad, {cohort::parallel::ReduceOp::avg})->wait();
#pragma once

#include "cohort/core/core.h"
#include "cohort/parallel/comm/communicator.h"
#include "cohort/parallel/comm/errors.h"
#include "cohort/parallel/comm/local_backend.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "cohort/parallel/comm/process_group.h"
#include "cohort/parallel/comm/store.h"
#include "cohort/parallel/comm/types.h"
#include "cohort/parallel/comm/work.h"
#include "cohort/parallel/ddp.h"
#include "cohort/parallel/mirrored.h"
