// Average pooling through oneDNN's pooling primitives (f32, plain NCHW).
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

}  // namespace

void avg_pool_forward_dnnl(const PoolGeometry& g, const float* x, float* y) {
  const PoolDescs d = pool_descs(g);
  dnnl_call("avg_pool2d", [&] {
    DnnlPrimitive p = cached_primitive(pool_key("avgpool_fwd", g), [&] {
      return make_dnnl_primitive<dnnl::pooling_forward::primitive_desc, dnnl::pooling_forward>(
          forward_pd(d, avg_algorithm(g), dnnl::prop_kind::forward_inference));
    });
    dnnl_execute(p, {{DNNL_ARG_SRC, dnnl_memory(d.src, x)}, {DNNL_ARG_DST, dnnl_memory(d.dst, y)}});
  });
}

void avg_pool_backward_dnnl(const PoolGeometry& g, const float* dy, float* dx) {
  const PoolDescs d = pool_descs(g);
  dnnl_call("avg_pool2d backward", [&] {
    DnnlPrimitive p = cached_primitive(pool_key("avgpool_bwd", g), [&] {
      const dnnl::pooling_backward::desc desc(avg_algorithm(g), d.src, d.dst, d.strides, d.kernel, d.padding_l,
                                              d.padding_r);
      const auto hint = forward_pd(d, avg_algorithm(g), dnnl::prop_kind::forward_training);
      return make_dnnl_primitive<dnnl::pooling_backward::primitive_desc, dnnl::pooling_backward>(
          dnnl::pooling_backward::primitive_desc(desc, dnnl_attr(), dnnl_engine(), hint));
    });
    dnnl_execute(p, {{DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)}, {DNNL_ARG_DIFF_SRC, dnnl_memory(d.src, dx)}});
  });
}


}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
