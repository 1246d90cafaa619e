// The oneDNN engine, streams, primitive cache and scratchpads (see dnnl-impl.h).
#include "dnnl-impl.h"

#if COHORT_WITH_DNNL

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "cohort/core/parallel_for.h"
#include "cohort/core/tensor.h"

namespace cohort::detail {

namespace {

// Past this many shapes the cache is dropped and refilled; a model has far fewer distinct
// (op, shape) pairs, so this only bounds memory for programs that sweep shapes.
constexpr size_t kMaxCachedPrimitives = 4096;

struct PrimitiveCache {
  std::mutex mutex;
  std::unordered_map<std::string, DnnlPrimitive> entries;
};

PrimitiveCache& primitive_cache() {
  static PrimitiveCache cache;
  return cache;
}

// A growable 64-byte-aligned buffer, one per thread, reused as every primitive's scratchpad.
class ScratchBuffer {
 public:
  void* get(size_t bytes) {
    if (bytes > capacity_) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      data_.reset(static_cast<char*>(std::aligned_alloc(64, rounded)));
      if (!data_) throw std::bad_alloc();
      capacity_ = rounded;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace

dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
}

dnnl::primitive_attr dnnl_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

DnnlPrimitive cached_primitive(const std::string& shape_key, const std::function<DnnlPrimitive()>& make) {
  // A primitive is built for the thread count current at its creation (its work split and
  // scratchpad size depend on it), so the count is part of the key, as in oneDNN's own cache.
  const std::string key = shape_key + "threads=" + std::to_string(get_num_threads());
  PrimitiveCache& cache = primitive_cache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.entries.find(key);
    if (it != cache.entries.end()) return it->second;
  }
  // Created outside the lock: two threads may both build the same primitive once, which is
  // harmless, while a slow creation never blocks lookups of other shapes.
  DnnlPrimitive p = make();
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (cache.entries.size() >= kMaxCachedPrimitives) cache.entries.clear();
  return cache.entries.emplace(key, std::move(p)).first->second;
}

void dnnl_execute(const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory> args) {
  thread_local ScratchBuffer scratch;
  const size_t bytes = p.scratchpad.get_size();
  if (bytes > 0) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.scratchpad, dnnl_engine(), scratch.get(bytes)));
  dnnl::stream& stream = dnnl_stream();
  p.primitive.execute(stream, args);
  stream.wait();
}

namespace {

// Copies `from` into `to` (same dims, different layouts) with a reorder primitive cached under key.
void reorder(const std::string& key, const dnnl::memory& from, const dnnl::memory& to) {
  DnnlPrimitive p = cached_primitive(key, [&] {
    return make_dnnl_primitive<dnnl::reorder::primitive_desc, dnnl::reorder>(
        dnnl::reorder::primitive_desc(dnnl_engine(), from.get_desc(), dnnl_engine(), to.get_desc(), dnnl_attr()));
  });
  dnnl_execute(p, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

}  // namespace

void dnnl_execute_reordered(const std::string& key, const DnnlPrimitive& p, std::unordered_map<int, dnnl::memory> args,
                            const std::vector<int>& outputs) {
  std::vector<Tensor> buffers;  // the temporaries, alive until the write-backs are done
  struct WriteBack {
    int arg;
    dnnl::memory temp, user;
  };
  std::vector<WriteBack> write_back;
  for (const auto& [arg, layout] : p.layouts) {
    auto it = args.find(arg);
    if (it == args.end() || it->second.get_desc() == layout) continue;
    buffers.push_back(Tensor::empty({static_cast<int64_t>((layout.get_size() + 3) / 4)}, DType::f32));
    dnnl::memory temp(layout, dnnl_engine(), buffers.back().raw_data());
    const bool is_output = std::find(outputs.begin(), outputs.end(), arg) != outputs.end();
    if (is_output) {
      write_back.push_back({arg, temp, it->second});
    } else {
      reorder(key + "reorder_in" + std::to_string(arg), it->second, temp);
    }
    it->second = temp;
  }
  dnnl_execute(p, std::move(args));
  for (const WriteBack& w : write_back) reorder(key + "reorder_out" + std::to_string(w.arg), w.temp, w.user);
}

dnnl::memory::desc dnnl_f32_desc(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  return dnnl::memory::desc(dnnl::memory::dims(dims.begin(), dims.end()), dnnl::memory::data_type::f32,
                            dnnl::memory::dims(strides.begin(), strides.end()));
}

dnnl::memory dnnl_memory(const dnnl::memory::desc& desc, const void* data) {
  // oneDNN takes a non-const handle for inputs too; it does not write to them.
  return dnnl::memory(desc, dnnl_engine(), const_cast<void*>(data));
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
