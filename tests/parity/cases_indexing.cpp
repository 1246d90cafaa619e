// Parity cases: cat, stack, split, chunk, index_select, gather, index_add, scatter_add.
#include "parity_case.h"

namespace cohort::parity {

void add_indexing_cases(CaseList& cases) {
  using V = std::vector<int64_t>;
  cases.push_back({"cat_dim0", "cat", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor a = c.input("a", c.randn({2, 3})), b = c.input("b", c.randn({1, 3}));
                     c.output(cat({a, b, c.input("c", c.transposed(4, 3))}, 0));
                   }});
  cases.push_back({"cat_last_dim", "cat", [](CaseBuilder& c) {
                     c.attr("dim", -1);
                     Tensor a = c.input("a", c.randn({2, 3, 1})), b = c.input("b", c.randn({2, 3, 4}));
                     c.output(cat({a, b}, -1));
                   }});
  cases.push_back({"cat_i64", "cat", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     c.output(cat({c.input("a", c.randint(0, 9, {2, 2})), c.input("b", c.randint(0, 9, {2, 3}))}, 1));
                   }});
  cases.push_back({"stack_dim0", "stack", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor a = c.input("a", c.randn({3, 4})), b = c.input("b", c.transposed(3, 4));
                     c.output(stack({a, b}, 0));
                   }});
  cases.push_back({"stack_last", "stack", [](CaseBuilder& c) {
                     c.attr("dim", 2);
                     Tensor a = c.input("a", c.randn({3, 4}, DType::f64)), b = c.input("b", c.randn({3, 4}, DType::f64));
                     c.output(stack({a, b, c.input("c", c.randn({3, 4}, DType::f64))}, 2));
                   }});
  cases.push_back({"split_size", "split", [](CaseBuilder& c) {
                     c.attr("split_size", 2);
                     c.attr("dim", 0);
                     c.outputs(split(c.input("x", c.randn({5, 3})), 2, 0));
                   }});
  cases.push_back({"split_sizes", "split", [](CaseBuilder& c) {
                     c.attr("split_size", V{1, 4, 2});
                     c.attr("dim", 1);
                     c.outputs(split(c.input("x", c.randn({3, 7})), V{1, 4, 2}, 1));
                   }});
  cases.push_back({"split_noncontiguous", "split", [](CaseBuilder& c) {
                     c.attr("split_size", 3);
                     c.attr("dim", 0);
                     c.outputs(split(c.input("x", c.transposed(7, 2)), 3, 0));
                   }});
  cases.push_back({"chunk", "chunk", [](CaseBuilder& c) {
                     c.attr("chunks", 3);
                     c.attr("dim", 1);
                     c.outputs(chunk(c.input("x", c.randn({2, 8})), 3, 1));
                   }});
  cases.push_back({"chunk_uneven", "chunk", [](CaseBuilder& c) {
                     c.attr("chunks", 4);
                     c.attr("dim", 0);
                     c.outputs(chunk(c.input("x", c.randn({5, 2})), 4, 0));  // torch gives 3 pieces of 2, 2, 1
                   }});
  cases.push_back({"index_select", "index_select", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor x = c.input("x", c.randn({6, 4}));
                     c.output(index_select(x, 0, c.input("index", c.randint(0, 6, {9}))));  // repeats
                   }});
  cases.push_back({"index_select_i32_dim1", "index_select", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     Tensor x = c.input("x", c.randn({3, 5, 2}));
                     c.output(index_select(x, 1, c.input("index", c.randint(0, 5, {4}, DType::i32))));
                   }});
  cases.push_back({"index_select_noncontiguous", "index_select", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     Tensor x = c.input("x", c.transposed(4, 6));
                     c.output(index_select(x, 1, c.input("index", c.randint(0, 6, {5}))));
                   }});
  cases.push_back({"gather_dim1", "gather", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     Tensor x = c.input("x", c.randn({4, 5}));
                     c.output(gather(x, 1, c.input("index", c.randint(0, 5, {4, 3}))));
                   }});
  cases.push_back({"gather_dim0_3d", "gather", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor x = c.input("x", c.randn({3, 4, 2}, DType::f64));
                     c.output(gather(x, 0, c.input("index", c.randint(0, 3, {5, 4, 2}))));
                   }});
  cases.push_back({"index_add", "index_add", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor x = c.input("x", c.randn({5, 3}));
                     Tensor index = c.input("index", c.randint(0, 5, {7}));
                     c.output(index_add(x, 0, index, c.input("source", c.randn({7, 3}))));
                   }});
  cases.push_back({"index_add_dim1", "index_add", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     Tensor x = c.input("x", c.randn({2, 4, 3}));
                     Tensor index = c.input("index", c.randint(0, 4, {6}));
                     c.output(index_add(x, 1, index, c.input("source", c.randn({2, 6, 3}))));
                   }});
  cases.push_back({"scatter_add", "scatter_add", [](CaseBuilder& c) {
                     c.attr("dim", 1);
                     Tensor x = c.input("x", c.randn({3, 5}));
                     Tensor index = c.input("index", c.randint(0, 5, {3, 4}));
                     c.output(scatter_add(x, 1, index, c.input("source", c.randn({3, 4}))));
                   }});
  cases.push_back({"scatter_add_dim0_smaller_index", "scatter_add", [](CaseBuilder& c) {
                     c.attr("dim", 0);
                     Tensor x = c.input("x", c.randn({4, 3}));
                     Tensor index = c.input("index", c.randint(0, 4, {2, 2}));  // smaller than source
                     // torch 1.13's backward rejects a source larger than index: no source gradient.
                     c.output(scatter_add(x, 0, index, c.input("source", c.randn({3, 3}), false)));
                   }});
}

}  // namespace cohort::parity
