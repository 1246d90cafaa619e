// Module: the unit a model is built from, PyTorch C++ frontend style. Parameters, buffers and
// submodules are registered by name; names compose with dots ("blocks.0.attn.qkv.weight"), and
// everything keyed by parameter (state dicts, optimizer state, shard maps) uses those names.
//
//   struct Net : Module {
//     std::shared_ptr<Linear> fc1, fc2;
//     Net() : Module("Net") {
//       fc1 = register_module("fc1", std::make_shared<Linear>(784, 128));
//       fc2 = register_module("fc2", std::make_shared<Linear>(128, 10));
//     }
//     Tensor forward(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
//   };
//   auto net = std::make_shared<Net>();
//   for (auto& [name, p] : net->named_parameters()) ...   // "fc1.weight", "fc1.bias", ...
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cohort/core/tensor.h"

namespace cohort {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
// name -> tensor, for saving and loading (parameters and buffers, dotted names).
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The module's computation on one input. Modules with other signatures add their own overloads;
  // this one throws for modules that do not take a single tensor.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& type_name() const { return type_name_; }

  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // This module ("") and every descendant, depth first, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Sets every parameter's gradient to undefined (the next backward writes a fresh one).
  void zero_grad();

  // Moves every parameter and buffer (and any gradient) to `device`, in place: every handle to them
  // (a Linear's `weight`, a list from parameters()) sees the moved tensor. Move the model before
  // making its optimizer, whose state is created on the parameters' device.
  Module& to(Device device);

  // Parameters and buffers by dotted name (detached handles sharing the module's storage).
  StateDict state_dict() const;
  // Copies values into the module's own tensors. strict: a missing, unexpected or mis-shaped key
  // is a ValueError listing every such key; non-strict loads what matches and skips the rest.
  void load_state_dict(const StateDict& state, bool strict = true);

  // Calls fn(dotted_name, module) on this module and every descendant.
  void apply(const std::function<void(const std::string&, Module&)>& fn);

  // Number of parameter elements.
  int64_t num_parameters() const;

 protected:
  // Registers a parameter (requires grad unless told otherwise) and returns the handle to keep.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    check_new_name(name);
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors* out) const;

  std::string type_name_;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace cohort
