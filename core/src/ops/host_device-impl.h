// COHORT_HOST_DEVICE marks a function that the CPU code and the CUDA kernels share, so that both
// compute exactly the same thing from one definition (implementation-only header).
#pragma once

#if defined(__CUDACC__)
#define COHORT_HOST_DEVICE __host__ __device__
#else
#define COHORT_HOST_DEVICE
#endif
