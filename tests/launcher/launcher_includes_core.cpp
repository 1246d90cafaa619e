// Built only by layering.launcher_cannot_include_core, which expects this include to fail:
// cohort-run links the env module and nothing of the model code.
#include "cohort/core/tensor.h"
#include "cohort/env/rank_env.h"

int launcher_probe() { return 0; }
