// Autograd: eager, dynamic reverse-mode differentiation, the micrograd way.
//
// Every differentiable op computes its result, then calls record(): when grad mode is on and an
// input requires grad, the result gets a grad_fn node that holds the op's gradient closure and one
// edge per input (to the input's own grad_fn, or to the leaf's AccumulateGrad node).
// backward() counts, for each reachable node, how many edges lead into it, then runs nodes whose
// count has dropped to zero (the newest op first), summing the gradients flowing into each node.
// A leaf's AccumulateGrad node therefore runs exactly once per backward pass, after every
// contribution has arrived: that is when its gradient is final and its hooks fire.
//
//   Tensor y = record(out, "exp", {x}, [y_saved = out.detach()](const Tensor& g, GradNeeds) {
//     return grads(g * y_saved);   // one gradient per input, undefined where not needed
//   });
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/tensor.h"

namespace cohort {

// Which inputs of a node need a gradient (the closure may skip the others).
class GradNeeds {
 public:
  explicit GradNeeds(std::vector<bool> needs) : needs_(std::move(needs)) {}
  bool operator[](size_t i) const { return i < needs_.size() && needs_[i]; }

 private:
  std::vector<bool> needs_;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, const GradNeeds& needs)>;

struct Edge {
  std::shared_ptr<Node> fn;  // null when the input needs no gradient
};

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Given d(output), returns d(input_i) for each next edge (undefined where not needed).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops what the node saved for backward (retain_graph=false).
  virtual void release() {}

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  std::vector<Edge>& next_edges() { return next_edges_; }

 protected:
  std::string name_;
  uint64_t sequence_nr_;
  std::vector<Edge> next_edges_;
};

// A node whose gradient is a closure (what record() creates).
class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn, std::vector<Edge> edges);
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release() override;

 private:
  BackwardFn fn_;
  bool released_ = false;
};

// The node at a leaf: sums incoming gradients into leaf.grad(), then runs the leaf's hooks.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::weak_ptr<TensorImpl> leaf);
  std::vector<Tensor> apply(const Tensor& grad_output) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;             // set on results of recorded ops
  std::weak_ptr<Node> grad_accumulator;      // a leaf's AccumulateGrad, created on demand
  std::vector<std::pair<int, GradHook>> hooks;
  int next_hook_id = 0;
};

// Grad mode: on by default, per thread.
class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

// Inside a NoGradGuard scope no op records history (optimizer steps, evaluation).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any defined input requires grad.
bool any_requires_grad(std::initializer_list<Tensor> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches a grad_fn to `out` when needed (see the top of this file); returns `out`.
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn);

// Helper for closures: grads(a, b) == std::vector<Tensor>{a, b}.
template <class... T>
std::vector<Tensor> grads(T&&... t) {
  return std::vector<Tensor>{std::forward<T>(t)...};
}

// Sums `grad` down to `shape` (the reverse of broadcasting `shape` up to grad.shape()).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// Backward from several roots at once (grad_roots[i] may be undefined for scalar roots).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
              bool retain_graph = false);

// Runs `fn` once the backward pass running on this thread has finished, before backward()
// returns (what data parallelism needs: wait for gradient all-reduces started by leaf hooks). Call
// it from inside a backward pass (a hook or a node); outside one it throws AutogradError. If the
// pass fails, queued callbacks are dropped; an exception thrown by a callback leaves backward().
void queue_backward_callback(std::function<void()> fn);
bool in_backward();  // whether this thread is inside backward()

}  // namespace cohort
