// Compiled by the layering tests only: a file of core's that includes a parallel header must not
// build (core sees only its own headers), while the same include in a parallel target does.
#include "cohort/parallel/parallel.h"

int cohort_layering_probe() { return 0; }
