// conv2d's kernels through oneDNN's convolution primitives (f32, plain NCHW / OIHW layouts, so
// cohort's tensors go in and out without reorders).
#include "conv-impl.h"

#if COHORT_WITH_DNNL

#include "dnnl-impl.h"

namespace cohort::detail {

namespace {

using dnnl::memory;

// The memory descriptors and geometry vectors oneDNN wants for one convolution.
struct ConvDescs {
  memory::desc src, weights, bias, dst;
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
                                             d.src, d.weights, d.bias, d.dst, d.strides, d.dilates, d.padding_l,
                                             d.padding_r)
           : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                             d.src, d.weights, d.dst, d.strides, d.dilates, d.padding_l, d.padding_r);
  return dnnl::convolution_forward::primitive_desc(desc, dnnl_attr(), dnnl_engine());
}

}  // namespace

void conv_forward_dnnl(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* y) {
  const ConvDescs d = conv_descs(g);
  const bool has_bias = bias != nullptr;
  dnnl_call("conv2d", [&] {
    DnnlPrimitive p = cached_primitive(conv_key("conv_fwd", g, has_bias), [&] {
      return make_dnnl_primitive<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>(
          forward_pd(d, has_bias));
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dnnl_memory(d.src, x)},
                                         {DNNL_ARG_WEIGHTS, dnnl_memory(d.weights, weight)},
                                         {DNNL_ARG_DST, dnnl_memory(d.dst, y)}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, dnnl_memory(d.bias, bias));
    dnnl_execute(p, std::move(args));
  });
}

void conv_backward_data_dnnl(const ConvGeometry& g, const float* dy, const float* weight, float* dx) {
  const ConvDescs d = conv_descs(g);
  dnnl_call("conv2d backward", [&] {
    DnnlPrimitive p = cached_primitive(conv_key("conv_bwd_data", g, false), [&] {
      const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst,
                                                       d.strides, d.dilates, d.padding_l, d.padding_r);
      return make_dnnl_primitive<dnnl::convolution_backward_data::primitive_desc, dnnl::convolution_backward_data>(
          dnnl::convolution_backward_data::primitive_desc(desc, dnnl_attr(), dnnl_engine(), forward_pd(d, false)));
    });
    dnnl_execute(p, {{DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)},
                     {DNNL_ARG_WEIGHTS, dnnl_memory(d.weights, weight)},
                     {DNNL_ARG_DIFF_SRC, dnnl_memory(d.src, dx)}});
  });
}

void conv_backward_weights_dnnl(const ConvGeometry& g, const float* x, const float* dy, float* dweight, float* dbias) {
  const ConvDescs d = conv_descs(g);
  const bool has_bias = dbias != nullptr;
  dnnl_call("conv2d backward", [&] {
    DnnlPrimitive p = cached_primitive(conv_key("conv_bwd_weights", g, has_bias), [&] {
      using Bwd = dnnl::convolution_backward_weights;
      const auto desc = has_bias ? Bwd::desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.bias, d.dst,
                                             d.strides, d.dilates, d.padding_l, d.padding_r)
                                 : Bwd::desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst, d.strides,
                                             d.dilates, d.padding_l, d.padding_r);
      return make_dnnl_primitive<Bwd::primitive_desc, Bwd>(
          Bwd::primitive_desc(desc, dnnl_attr(), dnnl_engine(), forward_pd(d, has_bias)));
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, dnnl_memory(d.src, x)},
                                         {DNNL_ARG_DIFF_DST, dnnl_memory(d.dst, dy)},
                                         {DNNL_ARG_DIFF_WEIGHTS, dnnl_memory(d.weights, dweight)}};
    if (has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, dnnl_memory(d.bias, dbias));
    dnnl_execute(p, std::move(args));
  });
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
