// cohort/parallel: how ranks cooperate. Communicators (`mpi` for host memory, `nccl` for device
// memory, `local` for ranks as threads), process groups, and the strategies built on them: Ddp,
// Fsdp and Mirrored. Built on cohort/core; core never includes anything from here (the build
// enforces it: core's targets do not see this directory).
#pragma once

#include "cohort/core/core.h"

namespace cohort::parallel {}
