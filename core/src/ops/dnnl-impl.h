// oneDNN plumbing shared by the oneDNN-backed ops: the CPU engine, a stream, a primitive cache and
// execution with a user-provided scratchpad (implementation-only header; every use sits under
// #if COHORT_WITH_DNNL).
//
// Creating a oneDNN primitive costs far more than running a small one, and a training step runs
// the same shapes over and over, so each op builds a key from everything its primitive depends
// on (kind, shapes, strides, dtype, options) and asks cached_primitive() for it. Primitives are
// created in scratchpad_mode::user and run with a per-thread scratchpad buffer, which makes a
// cached primitive safe to execute from several threads at once (thread-as-rank tests do that).
#pragma once

#include "cohort/config.h"

#if COHORT_WITH_DNNL

#include <oneapi/dnnl/dnnl.hpp>

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cohort/core/error.h"

namespace cohort::detail {

// The CPU engine, created on first use.
dnnl::engine& dnnl_engine();
// A stream on that engine for the calling thread (oneDNN streams are not meant to be shared
// between threads that execute concurrently).
dnnl::stream& dnnl_stream();

// A primitive plus the memory descriptors needed to run it.
struct DnnlPrimitive {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;  // empty when the primitive needs none
  dnnl::memory::desc workspace;   // a training forward's record for its backward; empty otherwise
  // For a primitive created with format_tag::any: the layout it chose for each of these arguments
  // (DNNL_ARG_*), which dnnl_execute_reordered() converts cohort's plain buffers to and from.
  std::vector<std::pair<int, dnnl::memory::desc>> layouts;
};

// The primitive cached under `key` and the current thread count, made by `make` on first use.
// `make` must create its primitive_desc with dnnl_attr() so the scratchpad is the caller's.
DnnlPrimitive cached_primitive(const std::string& key, const std::function<DnnlPrimitive()>& make);

// Attributes every cohort primitive is created with (scratchpad_mode::user).
dnnl::primitive_attr dnnl_attr();

// A DnnlPrimitive from a primitive descriptor (records its scratchpad and workspace descs).
template <class PrimitiveDesc, class Primitive>
DnnlPrimitive make_dnnl_primitive(const PrimitiveDesc& pd) {
  return DnnlPrimitive{Primitive(pd), pd.scratchpad_desc(), pd.workspace_desc(), {}};
}

// Runs p on the calling thread's stream with `args` plus a scratchpad, and waits.
void dnnl_execute(const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory> args);

// Runs p like dnnl_execute, where p chose its own `layouts`: each such argument whose memory in
// `args` has another layout is reordered into a temporary buffer first, or, for the arguments listed
// in `outputs`, computed there and reordered back into the caller's memory afterwards. The reorder
// primitives are cached under `key` (which must identify p's shapes) plus the argument.
void dnnl_execute_reordered(const std::string& key, const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory> args,
                            const std::vector<int>& outputs);

// An f32 memory descriptor with explicit strides (in elements), and memory wrapping user data.
dnnl::memory::desc dnnl_f32_desc(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides);
dnnl::memory dnnl_memory(const dnnl::memory::desc& desc, const void* data);

// "conv_fwd|2,3,8,8|..." from the parts of a cache key.
inline void append_key(std::string& key, int64_t v) {
  key += std::to_string(v);
  key += ',';
}
inline void append_key(std::string& key, const std::vector<int64_t>& v) {
  for (int64_t x : v) append_key(key, x);
  key += '|';
}
inline void append_key(std::string& key, const char* s) {
  key += s;
  key += '|';
}
template <class... Parts>
std::string dnnl_key(const Parts&... parts) {
  std::string key;
  (append_key(key, parts), ...);
  return key;
}

// Runs f, turning a dnnl::error into a cohort::Error that names the op.
template <class F>
decltype(auto) dnnl_call(const char* op, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    COHORT_THROW(Error, op, ": oneDNN failed: ", e.what(), " (status ", static_cast<int>(e.status), ")");
  }
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
