// Parity cases without gradients: factories (arange, full) and the in-place ops optimizers and
// initialisers use (add_, mul_, copy_, fill_). In-place cases register a copy of the tensor they
// modify as input, since inputs are written to disk after the case has run.
#include <tuple>

#include "parity_case.h"

namespace cohort::parity {

void add_factory_cases(CaseList& cases) {
  for (auto [name, start, end, step, dtype] :
       {std::tuple<const char*, double, double, double, DType>{"arange", 0, 7, 1, DType::f32},
        {"arange_step", -1.5, 2.0, 0.25, DType::f32},
        {"arange_negative_step", 5, -3, -2, DType::i64},
        {"arange_f64_fraction", 0, 1, 0.1, DType::f64}}) {
    cases.push_back({name, "arange", [start = start, end = end, step = step, dtype = dtype](CaseBuilder& c) {
                       c.attr("start", start);
                       c.attr("end", end);
                       c.attr("step", step);
                       c.attr("dtype", dtype_name(dtype));
                       c.output(arange(start, end, step, dtype));
                     }});
  }
  cases.push_back({"full", "full", [](CaseBuilder& c) {
                     c.attr("shape", std::vector<int64_t>{2, 3});
                     c.attr("value", 2.5);
                     c.attr("dtype", "f32");
                     c.output(full({2, 3}, 2.5));
                   }});
  cases.push_back({"add_inplace_alpha", "add_", [](CaseBuilder& c) {
                     c.attr("alpha", -0.1);
                     Tensor self = c.input("self", c.randn({3, 4}), false).clone();
                     Tensor other = c.input("other", c.randn({4}), false);
                     c.output(add_(self, other, -0.1));
                   }});
  cases.push_back({"add_inplace_f64_from_f32", "add_", [](CaseBuilder& c) {
                     c.attr("alpha", 1.0);
                     Tensor self = c.input("self", c.randn({3, 4}, DType::f64), false).clone();
                     c.output(add_(self, c.input("other", c.randn({3, 1}), false), 1.0));
                   }});
  cases.push_back({"mul_inplace", "mul_", [](CaseBuilder& c) {
                     Tensor self = c.input("self", c.randn({3, 4}), false).clone();
                     c.output(mul_(self, c.input("other", c.randn({3, 1}), false)));
                   }});
  cases.push_back({"mul_inplace_scalar", "mul_scalar_", [](CaseBuilder& c) {
                     c.attr("value", 0.9);
                     Tensor self = c.input("self", c.randn({5}, DType::bf16), false).clone();
                     c.output(mul_(self, 0.9));
                   }});
  cases.push_back({"copy_broadcast_convert", "copy_", [](CaseBuilder& c) {
                     Tensor self = c.input("self", c.randn({3, 4}, DType::f64), false).clone();
                     c.output(self.copy_(c.input("src", c.randn({4}, DType::bf16), false)));
                   }});
  cases.push_back({"copy_into_strided", "copy_", [](CaseBuilder& c) {
                     // A (3, 4) view of a (4, 3) buffer, holding the values registered as input.
                     Tensor self = c.input("self", c.transposed(3, 4), false).t().contiguous().t();
                     c.output(self.copy_(c.input("src", c.randn({3, 4}), false)));
                   }});
  cases.push_back({"fill", "fill_", [](CaseBuilder& c) {
                     c.attr("value", -3.0);
                     Tensor self = c.input("self", c.randint(0, 9, {2, 5}, DType::i32), false).clone();
                     c.output(self.fill_(-3.0));
                   }});
}

}  // namespace cohort::parity
