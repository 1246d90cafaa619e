// Pooling through oneDNN's pooling primitives (f32, plain NCHW).
#include "pool-impl.h"

#if COHORT_WITH_DNNL

#include "dnnl-impl.h"

namespace cohort::detail {

namespace {

using dnnl::memory;

struct PoolDescs {
  memory::desc src, dst;
  memory::dims strides, kernel, padding_l, padding_r;
};

PoolDescs pool_descs(const PoolGeometry& g) {
  const auto f32 = memory::data_type::f32;
  PoolDescs d;
  d.src = memory::desc({g.n, g.c, g.h, g.w}, f32, memory::format_tag::nchw);
  d.dst = memory::desc({g.n, g.c, g.ho, g.wo}, f32, memory::format_tag::nchw);
  d.strides = {g.stride, g.stride};
  d.kernel = {g.kernel, g.kernel};
  d.padding_l = {g.padding, g.padding};
  d.padding_r = {g.padding, g.padding};
  return d;
}

dnnl::algorithm avg_algorithm(const PoolGeometry& g) {
  return g.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
}

std::string pool_key(const char* kind, const PoolGeometry& g) {
  return dnnl_key(kind, std::vector<int64_t>{g.n, g.c, g.h, g.w, g.kernel, g.stride, g.padding, g.count_include_pad});
}

dnnl::pooling_forward::primitive_desc forward_pd(const PoolDescs& d, dnnl::algorithm alg, dnnl::prop_kind kind) {
  const dnnl::pooling_forward::desc desc(kind, alg, d.src, d.dst, d.strides, d.kernel, d.padding_l, d.padding_r);
  return dnnl::pooling_forward::primitive_desc(desc, dnnl_attr(), dnnl_engine());
}

void forward(const PoolGeometry& g, dnnl::algorithm alg, bool training, const float* x, float* y, void* workspace) {
  const PoolDescs d = pool_descs(g);
  const char* op = alg == dnnl::algorithm::pooling_max ? "max_pool2d" : "avg_pool2d";
  dnnl_call(op, [&] {
    const char* kind =
        alg == dnnl::algorithm::pooling_max ? (training ? "maxpool_fwd_train" : "maxpool_fwd") : "avgpool_fwd";
    DnnlPrimitive p = cached_primitive(pool_key(kind, g), [&] {
      const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
      return make_dnnl_primitive<dnnl::pooling_forward::primitive_desc, dnnl::pooling_forward>(
          forward_pd(d, alg, prop));
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dnnl_memory(d.src, x)}, {DNNL_ARG_DST, dnnl_memory(d.dst, y)}};
    if (training && p.workspace.get_size() > 0) args.emplace(DNNL_ARG_WORKSPACE, dnnl_memory(p.workspace, workspace));
    dnnl_execute(p, std::move(args));
  });
}

void backward(const PoolGeometry& g, dnnl::algorithm alg, const float* dy, const void* workspace, float* dx) {
  const PoolDescs d = pool_descs(g);
  const bool is_max = alg == dnnl::algorithm::pooling_max;
  dnnl_call(is_max ? "max_pool2d backward" : "avg_pool2d backward", [&] {
    DnnlPrimitive p = cached_primitive(pool_key(is_max ? "maxpool_bwd" : "avgpool_bwd", g), [&] {
      const dnnl::pooling_backward::desc desc(alg, d.src, d.dst, d.strides, d.kernel, d.padding_l, d.padding_r);
      const auto hint = forward_pd(d, alg, dnnl::prop_kind::forward_training);
      const dnnl::pooling_backward::primitive_desc pd(desc, dnnl_attr(), dnnl_engine(), hint);
      // The backward primitive reads the workspace the training forward wrote.
      return DnnlPrimitive{dnnl::pooling_backward(pd), pd.scratchpad_desc(), hint.workspace_desc()};
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)},
                                         {DNNL_ARG_DIFF_SRC, dnnl_memory(d.src, dx)}};
    if (is_max) args.emplace(DNNL_ARG_WORKSPACE, dnnl_memory(p.workspace, workspace));
    dnnl_execute(p, std::move(args));
  });
}

}  // namespace

int64_t max_pool_workspace_bytes_dnnl(const PoolGeometry& g) {
  return dnnl_call("max_pool2d", [&] {
    DnnlPrimitive p = cached_primitive(pool_key("maxpool_fwd_train", g), [&] {
      return make_dnnl_primitive<dnnl::pooling_forward::primitive_desc, dnnl::pooling_forward>(
          forward_pd(pool_descs(g), dnnl::algorithm::pooling_max, dnnl::prop_kind::forward_training));
    });
    return static_cast<int64_t>(p.workspace.get_size());
  });
}

void max_pool_forward_dnnl(const PoolGeometry& g, const float* x, float* y, void* workspace) {
  forward(g, dnnl::algorithm::pooling_max, workspace != nullptr, x, y, workspace);
}

void max_pool_backward_dnnl(const PoolGeometry& g, const float* dy, const void* workspace, float* dx) {
  backward(g, dnnl::algorithm::pooling_max, dy, workspace, dx);
}

void avg_pool_forward_dnnl(const PoolGeometry& g, const float* x, float* y) {
  forward(g, avg_algorithm(g), false, x, y, nullptr);
}

void avg_pool_backward_dnnl(const PoolGeometry& g, const float* dy, float* dx) {
  backward(g, avg_algorithm(g), dy, nullptr, dx);
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
