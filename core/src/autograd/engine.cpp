// The backward pass. See the comment at the top of cohort/core/autograd.h.
#include <exception>
#include <functional>
#include <queue>
#include <unordered_map>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/profiler.h"

namespace cohort {

namespace {

struct ByNewestFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

// The node a root's gradient enters: its grad_fn, or (a leaf as its own root) its accumulator,
// created here if the leaf has none yet. Returned as an owner so it lives through the pass.
std::shared_ptr<Node> root_node(const Tensor& root, size_t i) {
  COHORT_CHECK(root.defined(), AutogradError, "backward: root ", i, " is undefined");
  COHORT_CHECK(root.requires_grad(), AutogradError, "backward: root ", i,
               " does not require grad and has no grad_fn; did a parameter miss requires_grad_(), or was "
               "the loss computed under NoGradGuard?");
  if (root.grad_fn()) return root.grad_fn();
  AutogradMeta& meta = root.autograd_meta();
  std::shared_ptr<Node> acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(root.impl_ptr());
    meta.grad_accumulator = acc;
  }
  return acc;
}

// Backward passes running on this thread (nested ones come from hooks calling backward()) and the
// callbacks queued for the end of the outermost one.
thread_local int backward_depth = 0;
thread_local std::vector<std::function<void()>> end_callbacks;

void run_pass(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph);

}  // namespace

void queue_backward_callback(std::function<void()> fn) {
  COHORT_CHECK(backward_depth > 0, AutogradError,
               "queue_backward_callback: no backward pass is running on this thread; call it from a gradient hook");
  end_callbacks.push_back(std::move(fn));
}

bool in_backward() { return backward_depth > 0; }

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph) {
  struct Depth {
    Depth() { ++backward_depth; }
    ~Depth() {
      if (--backward_depth == 0 && std::uncaught_exceptions() > 0) end_callbacks.clear();
    }
  } depth;
  run_pass(roots, grad_roots, retain_graph);
  if (backward_depth > 1) return;  // the outermost pass runs them
  // Callbacks may queue more (run those too); take them out first, so a throwing one leaves none.
  while (!end_callbacks.empty()) {
    std::vector<std::function<void()>> callbacks;
    callbacks.swap(end_callbacks);
    for (auto& fn : callbacks) fn();
  }
}

namespace {

void run_pass(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph) {
  COHORT_CHECK(roots.size() == grad_roots.size(), AutogradError, "backward: ", roots.size(), " roots but ",
               grad_roots.size(), " root gradients");
  NoGradGuard no_grad;  // gradients are computed without recording history
  detail::profile_mark("(before backward)");

  // Seed gradients; keep accumulator nodes of leaf roots alive for the duration.
  std::unordered_map<Node*, Tensor> pending;
  std::vector<std::shared_ptr<Node>> keep_alive;
  std::vector<Node*> starts;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    keep_alive.push_back(root_node(root, i));
    Node* node = keep_alive.back().get();
    Tensor g = grad_roots[i];
    if (!g.defined()) {
      COHORT_CHECK(root.numel() == 1, AutogradError,
                   "backward: a gradient can be implied only for a scalar output, but root ", i, " has shape ",
                   root.shape_str(), "; pass the gradient explicitly: y.backward(grad_y)");
      g = ones(root.shape(), TensorOptions(root.dtype()).with_device(root.device()));
    }
    COHORT_CHECK(g.shape() == root.shape(), ShapeError, "backward: gradient of shape ", g.shape_str(),
                 " given for root ", i, " of shape ", root.shape_str());
    auto it = pending.find(node);
    if (it == pending.end()) {
      pending.emplace(node, g);
      starts.push_back(node);
    } else {
      it->second = add(it->second, g);
    }
  }

  // Count, for every node reachable from the roots, the edges that lead into it.
  std::unordered_map<Node*, int> dependencies;
  {
    std::vector<Node*> stack(starts.begin(), starts.end());
    std::unordered_map<Node*, bool> seen;
    for (Node* n : starts) seen[n] = true;
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (Edge& e : n->next_edges()) {
        if (!e.fn) continue;
        ++dependencies[e.fn.get()];
        if (!seen[e.fn.get()]) {
          seen[e.fn.get()] = true;
          stack.push_back(e.fn.get());
        }
      }
    }
  }

  // Run nodes whose inputs have all arrived, newest first (the reverse of the forward order).
  std::priority_queue<Node*, std::vector<Node*>, ByNewestFirst> ready;
  for (Node* n : starts)
    if (dependencies[n] == 0) ready.push(n);
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor g = std::move(pending[node]);
    pending.erase(node);
    std::vector<Tensor> input_grads;
    {
      detail::ProfileSuppress inner;  // the node's own ops are part of its time
      input_grads = node->apply(g);
    }
    detail::profile_mark(node->name().c_str(), " backward");
    g = Tensor();
    std::vector<Edge>& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      Node* next = edges[i].fn.get();
      if (next == nullptr) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        auto it = pending.find(next);
        if (it == pending.end() || !it->second.defined()) {
          pending[next] = std::move(input_grads[i]);
        } else {
          it->second = add(it->second, input_grads[i]);
        }
      }
      if (--dependencies[next] == 0) {
        if (pending.count(next) && pending[next].defined()) {
          ready.push(next);
        } else {
          // No gradient reached this node at all: nothing flows further down this path, but the
          // nodes below may still wait for it, so release their counts as well.
          std::vector<Node*> dead{next};
          while (!dead.empty()) {
            Node* d = dead.back();
            dead.pop_back();
            pending.erase(d);
            for (Edge& e : d->next_edges()) {
              if (!e.fn) continue;
              if (--dependencies[e.fn.get()] == 0) {
                if (pending.count(e.fn.get()) && pending[e.fn.get()].defined()) {
                  ready.push(e.fn.get());
                } else {
                  dead.push_back(e.fn.get());
                }
              }
            }
          }
        }
      }
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace
}  // namespace cohort
