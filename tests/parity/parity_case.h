// One parity case: random inputs, an op run forward, attributes the PyTorch side needs to redo it.
//
//   cases.push_back({"add_broadcast", "add", [](CaseBuilder& c) {
//     Tensor a = c.input("a", c.randn({4, 1}));
//     Tensor b = c.input("b", c.randn({3}));
//     c.output(add(a, b));
//   }});
//
// The driver (driver_main.cpp) runs each case's build function, then backward from every floating
// output with a random upstream gradient, and writes inputs, outputs, upstream gradients and input
// gradients to disk with a JSON manifest. compare.py redoes every case with torch. `op` names the
// torch function there (see OPS in torch_ops.py); `attrs` are its arguments.
//
// Cases that are not one op (optimizers, modules) name their outputs (c.output("fc.weight", p)),
// and a module's parameters are inputs under their dotted names (c.parameters(module)), so a
// mismatch is reported as "output fc.weight.exp_avg" or "grad of attn.qkv.weight".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/core/core.h"

namespace cohort::parity {

struct CaseInput {
  std::string name;
  Tensor value;  // the leaf the op saw (may be non-contiguous)
};

class CaseBuilder {
 public:
  explicit CaseBuilder(Generator& gen) : gen_(gen) {}

  // ---- random data (f32 unless told) ----
  Tensor randn(const Shape& shape, DType dtype = DType::f32);
  Tensor uniform(const Shape& shape, double lo, double hi, DType dtype = DType::f32);
  Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::i64);
  // Whole numbers in [-2, 2] stored as `dtype`: comparisons on these hit equality often.
  Tensor small_ints(const Shape& shape, DType dtype = DType::f32);
  Tensor bools(const Shape& shape);
  // A (rows, cols) tensor that is the transpose of a contiguous (cols, rows) one.
  Tensor transposed(int64_t rows, int64_t cols, DType dtype = DType::f32);

  // Registers `value` as input (in argument order for the torch side). Floating inputs become
  // leaves that require grad unless `grad` is false; the returned leaf keeps value's strides.
  Tensor input(const std::string& name, const Tensor& value, bool grad = true);
  // Registers a module's parameters as inputs under their dotted names: the module's own leaves,
  // so backward writes their gradients. Also records the attributes "params" (those names, in
  // order) and "state_dict_keys" (the keys of m.state_dict()) for the torch side to map.
  void parameters(const Module& m);
  void output(const Tensor& t) { output("", t); }
  // A named output: compare.py labels it by name, and a torch function may return a dict by name.
  void output(const std::string& name, const Tensor& t);
  void outputs(const std::vector<Tensor>& ts) {
    for (const Tensor& t : ts) output(t);
  }

  // Attributes, written into the manifest as JSON values.
  void attr(const std::string& key, int64_t v);
  void attr(const std::string& key, int v) { attr(key, static_cast<int64_t>(v)); }
  void attr(const std::string& key, double v);  // +-inf written as the strings "inf"/"-inf"
  void attr(const std::string& key, bool v);
  void attr(const std::string& key, const char* v) { attr(key, std::string(v)); }
  void attr(const std::string& key, const std::string& v);
  void attr(const std::string& key, const std::vector<int64_t>& v);
  void attr(const std::string& key, const std::vector<double>& v);
  void attr(const std::string& key, const std::vector<std::string>& v);

  Generator& gen() { return gen_; }
  const std::vector<CaseInput>& inputs() const { return inputs_; }
  const std::vector<Tensor>& outputs() const { return outputs_; }
  const std::vector<std::string>& output_names() const { return output_names_; }  // "" if unnamed
  const std::vector<std::pair<std::string, std::string>>& attrs() const { return attrs_; }

 private:
  Generator& gen_;
  std::vector<CaseInput> inputs_;
  std::vector<Tensor> outputs_;
  std::vector<std::string> output_names_;
  std::vector<std::pair<std::string, std::string>> attrs_;  // key, JSON text
};

struct ParityCase {
  std::string name;  // unique, [a-z0-9_]
  std::string op;    // the key of compare.py's OPS table
  std::function<void(CaseBuilder&)> build;
};
using CaseList = std::vector<ParityCase>;

// One function per op family, each in its own cases_*.cpp.
void add_elementwise_cases(CaseList& cases);
void add_reduction_cases(CaseList& cases);
void add_view_cases(CaseList& cases);
void add_linalg_cases(CaseList& cases);
void add_nn_cases(CaseList& cases);
void add_indexing_cases(CaseList& cases);
void add_factory_cases(CaseList& cases);
void add_optim_cases(CaseList& cases);     // SGD, Adam, AdamW: steps and state buffers
void add_schedule_cases(CaseList& cases);  // clip_grad_norm and the LR schedules
void add_module_cases(CaseList& cases);    // nn modules by state dict, forward and backward

}  // namespace cohort::parity
