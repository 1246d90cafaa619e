// conv2d's kernels through oneDNN's convolution primitives (f32).
//
// cohort's tensors are plain NCHW / OIHW, but on plain layouts oneDNN only offers im2col + gemm,
// which measured 2-4x slower than its direct kernels on blocked layouts (nChw8c on AVX2) for the
// example CNN's convolutions, while reordering to and from a blocked layout costs a few percent of
// that. So every primitive is created with format_tag::any, and dnnl_execute_reordered() converts
// cohort's buffers to the layouts it chose (nothing is reordered when it chose the plain one).
#include "conv-impl.h"

#if COHORT_WITH_DNNL

#include "dnnl-impl.h"

namespace cohort::detail {

namespace {

using dnnl::memory;

// The memory descriptors and geometry vectors oneDNN wants for one convolution.
struct ConvDescs {
  memory::desc src, weights, bias, dst;              // cohort's plain layouts
  memory::desc any_src, any_weights, any_dst;        // the same dims, layout left to oneDNN
  memory::dims strides, dilates, padding_l, padding_r;
};

ConvDescs conv_descs(const ConvGeometry& g) {
  using tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  ConvDescs d;
  d.src = memory::desc({g.n, g.c_in, g.h, g.w}, f32, tag::nchw);
  d.dst = memory::desc({g.n, g.c_out, g.ho, g.wo}, f32, tag::nchw);
  d.weights = g.groups == 1
                  ? memory::desc({g.c_out, g.c_in, g.kh, g.kw}, f32, tag::oihw)
                  : memory::desc({g.groups, g.c_out / g.groups, g.c_in / g.groups, g.kh, g.kw}, f32, tag::goihw);
  d.bias = memory::desc({g.c_out}, f32, tag::x);
  d.any_src = memory::desc(d.src.dims(), f32, tag::any);
  d.any_weights = memory::desc(d.weights.dims(), f32, tag::any);
  d.any_dst = memory::desc(d.dst.dims(), f32, tag::any);
  d.strides = {g.stride, g.stride};
  d.dilates = {g.dilation - 1, g.dilation - 1};  // oneDNN counts the gaps, PyTorch the step
  d.padding_l = {g.padding, g.padding};
  d.padding_r = {g.padding, g.padding};
  return d;
}

std::string conv_key(const char* kind, const ConvGeometry& g, bool bias) {
  return dnnl_key(
      kind, std::vector<int64_t>{g.n, g.c_in, g.h, g.w, g.c_out, g.kh, g.kw, g.stride, g.padding, g.dilation, g.groups},
      bias ? "bias" : "nobias");
}

// The forward descriptor: run for the forward pass, and the hint both backward passes need.
dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& d, bool bias) {
  const auto desc =
      bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                             d.any_src, d.any_weights, d.bias, d.any_dst, d.strides, d.dilates,
                                             d.padding_l, d.padding_r)
           : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                             d.any_src, d.any_weights, d.any_dst, d.strides, d.dilates, d.padding_l,
                                             d.padding_r);
  return dnnl::convolution_forward::primitive_desc(desc, dnnl_attr(), dnnl_engine());
}

}  // namespace

void conv_forward_dnnl(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* y) {
  const ConvDescs d = conv_descs(g);
  const bool has_bias = bias != nullptr;
  dnnl_call("conv2d", [&] {
    const std::string key = conv_key("conv_fwd", g, has_bias);
    DnnlPrimitive p = cached_primitive(key, [&] {
      const auto pd = forward_pd(d, has_bias);
      DnnlPrimitive made = make_dnnl_primitive<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>(pd);
      made.layouts = {{DNNL_ARG_SRC, pd.src_desc()}, {DNNL_ARG_WEIGHTS, pd.weights_desc()}, {DNNL_ARG_DST, pd.dst_desc()}};
      return made;
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dnnl_memory(d.src, x)},
                                         {DNNL_ARG_WEIGHTS, dnnl_memory(d.weights, weight)},
                                         {DNNL_ARG_DST, dnnl_memory(d.dst, y)}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, dnnl_memory(d.bias, bias));
    dnnl_execute_reordered(key, p, std::move(args), {DNNL_ARG_DST});
  });
}

void conv_backward_data_dnnl(const ConvGeometry& g, const float* dy, const float* weight, float* dx) {
  const ConvDescs d = conv_descs(g);
  dnnl_call("conv2d backward", [&] {
    const std::string key = conv_key("conv_bwd_data", g, false);
    DnnlPrimitive p = cached_primitive(key, [&] {
      using Bwd = dnnl::convolution_backward_data;
      const Bwd::desc desc(dnnl::algorithm::convolution_direct, d.any_src, d.any_weights, d.any_dst, d.strides,
                           d.dilates, d.padding_l, d.padding_r);
      const Bwd::primitive_desc pd(desc, dnnl_attr(), dnnl_engine(), forward_pd(d, false));
      DnnlPrimitive made = make_dnnl_primitive<Bwd::primitive_desc, Bwd>(pd);
      made.layouts = {{DNNL_ARG_DIFF_DST, pd.diff_dst_desc()},
                      {DNNL_ARG_WEIGHTS, pd.weights_desc()},
                      {DNNL_ARG_DIFF_SRC, pd.diff_src_desc()}};
      return made;
    });
    dnnl_execute_reordered(key, p,
                           {{DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)},
                            {DNNL_ARG_WEIGHTS, dnnl_memory(d.weights, weight)},
                            {DNNL_ARG_DIFF_SRC, dnnl_memory(d.src, dx)}},
                           {DNNL_ARG_DIFF_SRC});
  });
}

void conv_backward_weights_dnnl(const ConvGeometry& g, const float* x, const float* dy, float* dweight, float* dbias) {
  const ConvDescs d = conv_descs(g);
  const bool has_bias = dbias != nullptr;
  dnnl_call("conv2d backward", [&] {
    const std::string key = conv_key("conv_bwd_weights", g, has_bias);
    DnnlPrimitive p = cached_primitive(key, [&] {
      using Bwd = dnnl::convolution_backward_weights;
      const auto desc = has_bias ? Bwd::desc(dnnl::algorithm::convolution_direct, d.any_src, d.any_weights, d.bias,
                                             d.any_dst, d.strides, d.dilates, d.padding_l, d.padding_r)
                                 : Bwd::desc(dnnl::algorithm::convolution_direct, d.any_src, d.any_weights, d.any_dst,
                                             d.strides, d.dilates, d.padding_l, d.padding_r);
      const Bwd::primitive_desc pd(desc, dnnl_attr(), dnnl_engine(), forward_pd(d, has_bias));
      DnnlPrimitive made = make_dnnl_primitive<Bwd::primitive_desc, Bwd>(pd);
      made.layouts = {{DNNL_ARG_SRC, pd.src_desc()},
                      {DNNL_ARG_DIFF_DST, pd.diff_dst_desc()},
                      {DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc()}};
      return made;
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dnnl_memory(d.src, x)},
                                         {DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)},
                                         {DNNL_ARG_DIFF_WEIGHTS, dnnl_memory(d.weights, dweight)}};
    if (has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, dnnl_memory(d.bias, dbias));
    dnnl_execute_reordered(key, p, std::move(args), {DNNL_ARG_DIFF_WEIGHTS});
  });
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
