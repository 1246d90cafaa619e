// Parity cases: matmul (every rank combination, batched broadcast), bmm, linear, conv2d and the
// pools with each of their options.
#include "parity_case.h"

namespace cohort::parity {

namespace {

ParityCase matmul_case(const std::string& name, Shape sa, Shape sb, DType dtype = DType::f32) {
  return {name, "matmul", [=](CaseBuilder& c) {
            Tensor a = c.input("a", c.randn(sa, dtype));
            Tensor b = c.input("b", c.randn(sb, dtype));
            c.output(matmul(a, b));
          }};
}

ParityCase conv_case(const std::string& name, Shape x, Shape w, bool bias, int64_t stride, int64_t padding,
                     int64_t dilation, int64_t groups, DType dtype = DType::f32) {
  return {name, "conv2d", [=](CaseBuilder& c) {
            Conv2dOptions o;
            o.stride = stride;
            o.padding = padding;
            o.dilation = dilation;
            o.groups = groups;
            c.attr("stride", stride);
            c.attr("padding", padding);
            c.attr("dilation", dilation);
            c.attr("groups", groups);
            Tensor xi = c.input("x", c.randn(x, dtype));
            Tensor wi = c.input("weight", c.randn(w, dtype));
            Tensor bi = bias ? c.input("bias", c.randn({w[0]}, dtype)) : Tensor();
            c.output(conv2d(xi, wi, bi, o));
          }};
}

ParityCase pool_case(const std::string& name, bool is_max, Shape x, int64_t kernel, int64_t stride,
                     int64_t padding, bool count_include_pad = true) {
  return {name, is_max ? "max_pool2d" : "avg_pool2d", [=](CaseBuilder& c) {
            Pool2dOptions o;
            o.kernel_size = kernel;
            o.stride = stride;
            o.padding = padding;
            o.count_include_pad = count_include_pad;
            c.attr("kernel_size", kernel);
            c.attr("stride", stride);
            c.attr("padding", padding);
            c.attr("count_include_pad", count_include_pad);
            Tensor xi = c.input("x", c.randn(x));
            c.output(is_max ? max_pool2d(xi, o) : avg_pool2d(xi, o));
          }};
}

}  // namespace

void add_linalg_cases(CaseList& cases) {
  cases.push_back(matmul_case("matmul_dot", {7}, {7}));
  cases.push_back(matmul_case("matmul_mm", {5, 7}, {7, 3}));
  cases.push_back(matmul_case("matmul_vm", {7}, {7, 3}));
  cases.push_back(matmul_case("matmul_mv", {5, 7}, {7}));
  cases.push_back(matmul_case("matmul_batched", {3, 4, 5}, {3, 5, 2}));
  cases.push_back(matmul_case("matmul_batched_broadcast", {2, 1, 4, 5}, {3, 5, 2}));
  cases.push_back(matmul_case("matmul_batched_shared_rhs", {2, 3, 4, 5}, {5, 6}));
  cases.push_back(matmul_case("matmul_vector_batched", {5}, {2, 5, 3}));
  cases.push_back(matmul_case("matmul_batched_vector", {2, 4, 5}, {5}));
  cases.push_back(matmul_case("matmul_f64", {4, 6}, {6, 3}, DType::f64));
  cases.push_back(matmul_case("matmul_large", {96, 200}, {200, 80}));
  cases.push_back(matmul_case("matmul_large_batched", {4, 64, 96}, {96, 48}));
  cases.push_back({"matmul_transposed_operands", "matmul", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.transposed(5, 7));
                     Tensor b = c.input("b", c.transposed(7, 4));
                     c.output(matmul(a, b));
                   }});
  cases.push_back({"bmm", "bmm", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randn({3, 4, 5}));
                     Tensor b = c.input("b", c.randn({3, 5, 6}));
                     c.output(bmm(a, b));
                   }});
  cases.push_back({"bmm_transposed_operand", "bmm", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randn({2, 5, 4}).transpose(1, 2));
                     Tensor b = c.input("b", c.randn({2, 5, 3}));
                     c.output(bmm(a, b));
                   }});
  for (auto [name, x_shape, bias, dtype] :
       {std::tuple<const char*, Shape, bool, DType>{"linear", {4, 6}, true, DType::f32},
        {"linear_no_bias", {4, 6}, false, DType::f32},
        {"linear_3d_input", {2, 3, 6}, true, DType::f32},
        {"linear_1d_input", {6}, true, DType::f32},
        {"linear_f64", {4, 6}, true, DType::f64},
        {"linear_large", {128, 256}, true, DType::f32}}) {
    cases.push_back({name, "linear", [x_shape = x_shape, bias = bias, dtype = dtype](CaseBuilder& c) {
                       const int64_t in = x_shape.back(), out = in == 256 ? 100 : 5;
                       Tensor x = c.input("x", c.randn(x_shape, dtype));
                       Tensor w = c.input("weight", c.randn({out, in}, dtype));
                       c.output(linear(x, w, bias ? c.input("bias", c.randn({out}, dtype)) : Tensor()));
                     }});
  }

  // ---- conv2d: (name, x, weight, bias, stride, padding, dilation, groups) ----
  cases.push_back(conv_case("conv2d", {2, 3, 6, 6}, {4, 3, 3, 3}, true, 1, 0, 1, 1));
  cases.push_back(conv_case("conv2d_no_bias", {2, 3, 6, 6}, {4, 3, 3, 3}, false, 1, 0, 1, 1));
  cases.push_back(conv_case("conv2d_stride2", {2, 3, 7, 7}, {4, 3, 3, 3}, true, 2, 0, 1, 1));
  cases.push_back(conv_case("conv2d_padding1", {2, 3, 5, 5}, {4, 3, 3, 3}, true, 1, 1, 1, 1));
  cases.push_back(conv_case("conv2d_stride2_padding2", {1, 2, 6, 5}, {3, 2, 3, 3}, true, 2, 2, 1, 1));
  cases.push_back(conv_case("conv2d_dilation2", {2, 3, 8, 8}, {4, 3, 3, 3}, true, 1, 0, 2, 1));
  cases.push_back(conv_case("conv2d_dilation_padding", {1, 2, 7, 7}, {3, 2, 3, 3}, true, 1, 2, 2, 1));
  cases.push_back(conv_case("conv2d_groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, true, 1, 1, 1, 2));
  cases.push_back(conv_case("conv2d_depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, true, 1, 1, 1, 3));
  cases.push_back(conv_case("conv2d_1x1", {2, 8, 4, 4}, {5, 8, 1, 1}, true, 1, 0, 1, 1));
  cases.push_back(conv_case("conv2d_rect_kernel", {1, 2, 6, 7}, {3, 2, 2, 4}, true, 1, 1, 1, 1));
  cases.push_back(conv_case("conv2d_f64", {2, 3, 5, 5}, {4, 3, 3, 3}, true, 2, 1, 1, 1, DType::f64));
  cases.push_back(conv_case("conv2d_large", {4, 16, 20, 20}, {32, 16, 3, 3}, true, 1, 1, 1, 1));
  cases.push_back({"conv2d_channels_last_input", "conv2d", [](CaseBuilder& c) {
                     c.attr("stride", 1);
                     c.attr("padding", 1);
                     c.attr("dilation", 1);
                     c.attr("groups", 1);
                     Tensor x = c.input("x", c.randn({2, 5, 5, 3}).permute({0, 3, 1, 2}));
                     Tensor w = c.input("weight", c.randn({4, 3, 3, 3}));
                     Conv2dOptions o;
                     o.padding = 1;
                     c.output(conv2d(x, w, c.input("bias", c.randn({4})), o));
                   }});

  // ---- pools: (name, is_max, x, kernel, stride, padding, count_include_pad) ----
  for (bool is_max : {true, false}) {
    const std::string p = is_max ? "max_pool2d" : "avg_pool2d";
    cases.push_back(pool_case(p, is_max, {2, 3, 6, 6}, 2, 0, 0));
    cases.push_back(pool_case(p + "_overlapping", is_max, {2, 3, 6, 6}, 3, 1, 0));
    cases.push_back(pool_case(p + "_stride2_padding1", is_max, {2, 3, 7, 7}, 3, 2, 1));
    cases.push_back(pool_case(p + "_uneven", is_max, {1, 2, 7, 5}, 2, 2, 0));  // the last row/col dropped
    cases.push_back(pool_case(p + "_large", is_max, {4, 16, 32, 32}, 2, 0, 0));
  }
  cases.push_back(pool_case("avg_pool2d_exclude_pad", false, {2, 3, 7, 7}, 3, 2, 1, false));
  cases.push_back(pool_case("avg_pool2d_exclude_pad_stride1", false, {1, 2, 5, 6}, 3, 1, 1, false));
}

}  // namespace cohort::parity
