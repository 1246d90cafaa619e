// Parity cases: sum, mean, max, min (whole tensor and along a dim), argmax, argmin.
#include "parity_case.h"

namespace cohort::parity {

namespace {

// sum/mean over `dims` (empty: all elements, the overload without dims).
ParityCase sum_mean_case(const std::string& name, bool is_mean, Shape shape, std::vector<int64_t> dims,
                         bool keepdim, DType dtype = DType::f32) {
  return {name, is_mean ? "mean" : "sum", [=](CaseBuilder& c) {
            Tensor x = c.input("x", c.randn(shape, dtype));
            if (dims.empty()) {
              c.output(is_mean ? mean(x) : sum(x));
              return;
            }
            c.attr("dims", dims);
            c.attr("keepdim", keepdim);
            c.output(is_mean ? mean(x, dims, keepdim) : sum(x, dims, keepdim));
          }};
}

}  // namespace

void add_reduction_cases(CaseList& cases) {
  for (bool is_mean : {false, true}) {
    const std::string o = is_mean ? "mean" : "sum";
    cases.push_back(sum_mean_case(o + "_all", is_mean, {4, 5}, {}, false));
    cases.push_back(sum_mean_case(o + "_dim0", is_mean, {4, 5}, {0}, false));
    cases.push_back(sum_mean_case(o + "_dims_keepdim", is_mean, {2, 3, 4}, {0, 2}, true));
    cases.push_back(sum_mean_case(o + "_negative_dim", is_mean, {2, 3, 4}, {-1}, false));
    cases.push_back(sum_mean_case(o + "_f64", is_mean, {3, 7}, {1}, false, DType::f64));
    cases.push_back(sum_mean_case(o + "_large_all", is_mean, {256, 1024}, {}, false));
    cases.push_back(sum_mean_case(o + "_large_rows", is_mean, {512, 300}, {1}, false));
    cases.push_back(sum_mean_case(o + "_large_cols", is_mean, {300, 512}, {0}, true));
    cases.push_back({o + "_noncontiguous", o, [is_mean](CaseBuilder& c) {
                       c.attr("dims", std::vector<int64_t>{1});
                       c.attr("keepdim", false);
                       Tensor x = c.input("x", c.transposed(5, 6));
                       c.output(is_mean ? mean(x, {1}) : sum(x, {1}));
                     }});
  }
  cases.push_back({"sum_i32", "sum", [](CaseBuilder& c) {  // integer sums are i64, as in PyTorch
                     c.attr("dims", std::vector<int64_t>{0});
                     c.attr("keepdim", false);
                     c.output(sum(c.input("x", c.randint(-100, 100, {6, 3}, DType::i32)), {0}));
                   }});
  cases.push_back(sum_mean_case("sum_bf16", false, {8, 9}, {1}, false, DType::bf16));

  // ---- max / min (random floats: no ties) ----
  for (bool is_max : {true, false}) {
    const std::string o = is_max ? "max" : "min";
    cases.push_back({o + "_all", o, [is_max](CaseBuilder& c) {
                       Tensor x = c.input("x", c.randn({4, 5}));
                       c.output(is_max ? max(x) : min(x));
                     }});
    cases.push_back({o + "_all_large", o, [is_max](CaseBuilder& c) {
                       Tensor x = c.input("x", c.randn({300, 500}));
                       c.output(is_max ? max(x) : min(x));
                     }});
    for (auto [suffix, shape, dim, keepdim] :
         {std::tuple<const char*, Shape, int64_t, bool>{"_dim1", {4, 5}, 1, false},
          {"_dim0_keepdim", {4, 5, 3}, 0, true},
          {"_negative_dim", {2, 3, 4}, -1, false},
          {"_large", {200, 700}, 1, false}}) {
      cases.push_back({o + suffix, o + "_dim", [is_max, shape = shape, dim = dim, keepdim = keepdim](CaseBuilder& c) {
                         c.attr("dim", dim);
                         c.attr("keepdim", keepdim);
                         Tensor x = c.input("x", c.randn(shape));
                         ValuesIndices r = is_max ? max(x, dim, keepdim) : min(x, dim, keepdim);
                         c.outputs({r.values, r.indices});
                       }});
      cases.push_back({std::string(is_max ? "argmax" : "argmin") + suffix, is_max ? "argmax" : "argmin",
                       [is_max, shape = shape, dim = dim, keepdim = keepdim](CaseBuilder& c) {
                         c.attr("dim", dim);
                         c.attr("keepdim", keepdim);
                         Tensor x = c.input("x", c.randn(shape));
                         c.output(is_max ? argmax(x, dim, keepdim) : argmin(x, dim, keepdim));
                       }});
    }
    cases.push_back({o + "_dim_noncontiguous", o + "_dim", [is_max](CaseBuilder& c) {
                       c.attr("dim", 0);
                       c.attr("keepdim", false);
                       Tensor x = c.input("x", c.transposed(5, 4));
                       ValuesIndices r = is_max ? max(x, 0) : min(x, 0);
                       c.outputs({r.values, r.indices});
                     }});
    cases.push_back({o + "_dim_f64", o + "_dim", [is_max](CaseBuilder& c) {
                       c.attr("dim", 1);
                       c.attr("keepdim", false);
                       Tensor x = c.input("x", c.randn({3, 6}, DType::f64));
                       ValuesIndices r = is_max ? max(x, 1) : min(x, 1);
                       c.outputs({r.values, r.indices});
                     }});
    cases.push_back({o + "_dim_i64", o + "_dim", [is_max](CaseBuilder& c) {  // ties: the first one
                       c.attr("dim", 1);
                       c.attr("keepdim", false);
                       Tensor x = c.input("x", c.randint(0, 3, {4, 6}));
                       ValuesIndices r = is_max ? max(x, 1) : min(x, 1);
                       c.outputs({r.values, r.indices});
                     }});
  }
}

}  // namespace cohort::parity
