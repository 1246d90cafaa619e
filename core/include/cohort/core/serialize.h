// Saving and loading a StateDict (name -> tensor) as one file.
//
// Format (little-endian): "COHORTSD" magic, u32 version (1), u64 count; then per tensor: u32 name
// length, name bytes, u8 dtype, u32 ndim, i64 sizes[ndim], u64 byte count, u64 FNV-1a checksum of
// the bytes, the bytes (contiguous, row-major). Written to "<path>.tmp", fsynced, then renamed over
// <path>: a crash mid-save leaves the previous file intact.
#pragma once

#include <string>

#include "cohort/core/nn/module.h"

namespace cohort {

void save(const StateDict& state, const std::string& path);
// Throws ValueError naming the file and what is wrong (bad magic, truncation, checksum mismatch).
StateDict load(const std::string& path);

// FNV-1a 64-bit hash of a byte range (the checksum used in files).
uint64_t fnv1a64(const void* data, size_t size);

}  // namespace cohort
