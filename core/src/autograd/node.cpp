#include <atomic>
#include <cstring>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/reduction.h"
#include "cohort/core/profiler.h"

namespace cohort {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
thread_local bool grad_mode_enabled = true;

bool is_view_op(const char* name) {
  static const char* const kViews[] = {"view", "permute", "slice", "select", "expand", "to"};
  for (const char* v : kViews)
    if (std::strcmp(name, v) == 0) return true;
  return false;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn()};
  AutogradMeta& meta = t.autograd_meta();
  std::shared_ptr<Node> acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    meta.grad_accumulator = acc;
  }
  return {acc};
}
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(next_sequence_nr++) {}

FunctionNode::FunctionNode(std::string name, BackwardFn fn, std::vector<Edge> edges)
    : Node(std::move(name)), fn_(std::move(fn)) {
  next_edges_ = std::move(edges);
}

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_output) {
  COHORT_CHECK(!released_, AutogradError, "backward: the graph through ", name_,
               " was already freed by an earlier backward(); pass retain_graph=true to the first "
               "backward() to go through the graph twice");
  std::vector<bool> needs(next_edges_.size());
  for (size_t i = 0; i < needs.size(); ++i) needs[i] = next_edges_[i].fn != nullptr;
  std::vector<Tensor> out = fn_(grad_output, GradNeeds(std::move(needs)));
  COHORT_CHECK(out.size() == next_edges_.size(), AutogradError, "backward: ", name_, " returned ", out.size(),
               " gradients for ", next_edges_.size(), " inputs (a bug in that op's gradient)");
  return out;
}

void FunctionNode::release() {
  fn_ = nullptr;
  released_ = true;
}

AccumulateGrad::AccumulateGrad(std::weak_ptr<TensorImpl> leaf) : Node("AccumulateGrad"), leaf_(std::move(leaf)) {}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  std::shared_ptr<TensorImpl> impl = leaf_.lock();
  if (!impl) return {};  // the leaf is gone; nobody can read its gradient
  Tensor leaf(impl);
  AutogradMeta& meta = leaf.autograd_meta();
  NoGradGuard no_grad;
  Tensor g = grad_output;
  // A leaf's gradient lives where the leaf does (a 0-dim CPU tensor used with CUDA tensors gets a
  // gradient computed on the GPU).
  if (g.device() != leaf.device()) g = g.to(leaf.device());
  if (g.dtype() != leaf.dtype()) g = g.to(leaf.dtype());
  COHORT_CHECK(g.shape() == leaf.shape(), AutogradError, "backward: gradient of shape ", g.shape_str(),
               " arrived for a leaf of shape ", leaf.shape_str(), " (a bug in an op's gradient)");
  if (!meta.grad.defined()) {
    // The incoming gradient may alias other tensors (add's gradient passes one tensor to both
    // inputs), so the leaf gets its own copy unless nothing else can see this one.
    const bool unshared = g.impl_ptr().use_count() <= 2 && g.storage().use_count() == 1;
    meta.grad = (unshared && g.is_contiguous()) ? g : g.clone();
  } else {
    add_(meta.grad, g);
  }
  for (auto& [id, hook] : meta.hooks) hook(leaf);
  return {};
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool any_requires_grad(std::initializer_list<Tensor> inputs) {
  return any_requires_grad(std::vector<Tensor>(inputs));
}

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  // View ops cost nothing: their marks would only take time from the op that calls them.
  if (detail::profiling_flag() && !is_view_op(name)) detail::profile_mark(name);
  if (!any_requires_grad(inputs)) return out;
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
  out.autograd_meta().grad_fn = std::make_shared<FunctionNode>(name, std::move(fn), std::move(edges));
  return out;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  COHORT_CHECK(lead >= 0, ShapeError, "sum_to: cannot sum shape ", grad.shape_str(), " down to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1)) dims.push_back(i);
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, true);
  return r.reshape(shape);
}

}  // namespace cohort
