// Parity cases: the view methods of Tensor and the copies (contiguous, clone, to).
#include "parity_case.h"

namespace cohort::parity {

namespace {

// A case that applies `view` to one input of `shape`; the attributes say which view for torch.
template <class F>
ParityCase view_case(const std::string& name, const std::string& op, Shape shape, F view,
                     std::function<void(CaseBuilder&)> attrs, bool transposed = false) {
  return {name, op, [=](CaseBuilder& c) {
            attrs(c);
            Tensor x = c.input("x", transposed ? c.transposed(shape[0], shape[1]) : c.randn(shape));
            c.output(view(x));
          }};
}

}  // namespace

void add_view_cases(CaseList& cases) {
  using V = std::vector<int64_t>;
  cases.push_back(view_case("reshape", "reshape", {2, 6}, [](const Tensor& x) { return x.reshape({3, -1}); },
                            [](CaseBuilder& c) { c.attr("shape", V{3, -1}); }));
  cases.push_back(view_case("reshape_noncontiguous", "reshape", {3, 4}, [](const Tensor& x) { return x.reshape({12}); },
                            [](CaseBuilder& c) { c.attr("shape", V{12}); }, true));
  cases.push_back(view_case("view", "reshape", {2, 3, 4}, [](const Tensor& x) { return x.view({6, 4}); },
                            [](CaseBuilder& c) { c.attr("shape", V{6, 4}); }));
  cases.push_back(view_case("permute", "permute", {2, 3, 4}, [](const Tensor& x) { return x.permute({2, 0, 1}); },
                            [](CaseBuilder& c) { c.attr("dims", V{2, 0, 1}); }));
  cases.push_back(view_case("transpose", "transpose", {2, 3, 4}, [](const Tensor& x) { return x.transpose(0, -1); },
                            [](CaseBuilder& c) { c.attr("dim0", 0); c.attr("dim1", -1); }));
  cases.push_back(view_case("t", "transpose", {3, 5}, [](const Tensor& x) { return x.t(); },
                            [](CaseBuilder& c) { c.attr("dim0", 0); c.attr("dim1", 1); }, true));
  cases.push_back(view_case("narrow", "narrow", {5, 4}, [](const Tensor& x) { return x.narrow(0, 1, 3); },
                            [](CaseBuilder& c) { c.attr("dim", 0); c.attr("start", 1); c.attr("length", 3); }));
  cases.push_back(view_case("slice_step", "slice", {5, 7}, [](const Tensor& x) { return x.slice(1, 1, 7, 3); },
                            [](CaseBuilder& c) { c.attr("dim", 1); c.attr("start", 1); c.attr("end", 7); c.attr("step", 3); }));
  cases.push_back(view_case("slice_noncontiguous", "slice", {6, 4}, [](const Tensor& x) { return x.slice(0, 0, 6, 2); },
                            [](CaseBuilder& c) { c.attr("dim", 0); c.attr("start", 0); c.attr("end", 6); c.attr("step", 2); },
                            true));
  cases.push_back(view_case("select", "select", {3, 4, 2}, [](const Tensor& x) { return x.select(1, -2); },
                            [](CaseBuilder& c) { c.attr("dim", 1); c.attr("index", -2); }));
  cases.push_back(view_case("expand", "expand", {3, 1}, [](const Tensor& x) { return x.expand({2, 3, 4}); },
                            [](CaseBuilder& c) { c.attr("shape", V{2, 3, 4}); }));
  cases.push_back(view_case("squeeze", "squeeze", {2, 1, 3, 1}, [](const Tensor& x) { return x.squeeze(); },
                            [](CaseBuilder& c) {}));
  cases.push_back(view_case("squeeze_dim", "squeeze_dim", {2, 1, 3}, [](const Tensor& x) { return x.squeeze(1); },
                            [](CaseBuilder& c) { c.attr("dim", 1); }));
  cases.push_back(view_case("unsqueeze", "unsqueeze", {2, 3}, [](const Tensor& x) { return x.unsqueeze(-1); },
                            [](CaseBuilder& c) { c.attr("dim", -1); }));
  cases.push_back(view_case("flatten", "flatten", {2, 3, 4, 2}, [](const Tensor& x) { return x.flatten(1, 2); },
                            [](CaseBuilder& c) { c.attr("start_dim", 1); c.attr("end_dim", 2); }));
  cases.push_back(view_case("flatten_noncontiguous", "flatten", {4, 3}, [](const Tensor& x) { return x.flatten(); },
                            [](CaseBuilder& c) { c.attr("start_dim", 0); c.attr("end_dim", -1); }, true));
  cases.push_back(view_case("contiguous", "contiguous", {4, 3}, [](const Tensor& x) { return x.contiguous(); },
                            [](CaseBuilder& c) {}, true));
  cases.push_back(view_case("clone", "clone", {4, 3}, [](const Tensor& x) { return x.clone(); }, [](CaseBuilder& c) {}));
  cases.push_back(view_case("view_chain", "view_chain", {4, 6},
                            [](const Tensor& x) { return x.t().narrow(0, 1, 4).unsqueeze(0).permute({2, 0, 1}); },
                            [](CaseBuilder& c) {}));
  // to(dtype): the gradient comes back in the source dtype.
  for (auto [name, dt] : {std::pair<const char*, DType>{"to_f64", DType::f64}, {"to_bf16", DType::bf16},
                          {"to_f16", DType::f16}, {"to_i64", DType::i64}, {"to_bool", DType::boolean}}) {
    cases.push_back({name, "to", [dt = dt](CaseBuilder& c) {
                       c.attr("dtype", dtype_name(dt));
                       Tensor x = c.input("x", c.randn({3, 4}) * 3.0);
                       c.output(x.to(dt));
                     }});
  }
  cases.push_back({"to_f32_from_i32", "to", [](CaseBuilder& c) {
                     c.attr("dtype", "f32");
                     c.output(c.input("x", c.randint(-50, 50, {5}, DType::i32)).to(DType::f32));
                   }});
}

}  // namespace cohort::parity
