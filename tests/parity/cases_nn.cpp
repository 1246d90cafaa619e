// Parity cases: softmax, log_softmax, cross_entropy, layer_norm, embedding, dropout, attention.
#include "parity_case.h"

namespace cohort::parity {

namespace {

const char* reduction_name(Reduction r) {
  return r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "none";
}

// Targets in [0, classes), with roughly one in four replaced by ignore_index when `ignore` is set
// (never the first, so a mean over the targets that are not ignored is defined).
Tensor targets(CaseBuilder& c, const Shape& shape, int64_t classes, bool ignore, int64_t ignore_index) {
  Tensor t = c.randint(0, classes, shape);
  if (!ignore) return t;
  Tensor drop = lt(c.uniform(shape, 0.0, 1.0), 0.25);
  Tensor r = where(drop, full(shape, static_cast<double>(ignore_index), DType::i64), t);
  r.view({-1}).narrow(0, 0, 1).copy_(t.view({-1}).narrow(0, 0, 1));
  return r;
}

}  // namespace

void add_nn_cases(CaseList& cases) {
  for (bool log : {false, true}) {
    const std::string o = log ? "log_softmax" : "softmax";
    for (auto [suffix, shape, dim, dtype] :
         {std::tuple<const char*, Shape, int64_t, DType>{"", {4, 7}, -1, DType::f32},
          {"_dim0", {4, 7}, 0, DType::f32},
          {"_3d_middle", {2, 5, 3}, 1, DType::f32},
          {"_f64", {3, 6}, 1, DType::f64},
          {"_large", {64, 1000}, 1, DType::f32},
          {"_large_logits", {4, 9}, 1, DType::f32}}) {  // large magnitudes: needs the max shift
      cases.push_back({o + suffix, o, [log, shape = shape, dim = dim, dtype = dtype, suffix = std::string(suffix)](CaseBuilder& c) {
                         c.attr("dim", dim);
                         Tensor x = c.randn(shape, dtype);
                         if (suffix == "_large_logits") x = x * 40.0;
                         x = c.input("x", x);
                         c.output(log ? log_softmax(x, dim) : softmax(x, dim));
                       }});
    }
    cases.push_back({o + "_noncontiguous", o, [log](CaseBuilder& c) {
                       c.attr("dim", 1);
                       Tensor x = c.input("x", c.transposed(5, 6));
                       c.output(log ? log_softmax(x, 1) : softmax(x, 1));
                     }});
  }

  // ---- cross_entropy ----
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (bool ignore : {false, true}) {
      const std::string name = std::string("cross_entropy_") + reduction_name(r) + (ignore ? "_ignore_index" : "");
      cases.push_back({name, "cross_entropy", [r, ignore](CaseBuilder& c) {
                         CrossEntropyOptions o;
                         o.reduction = r;
                         c.attr("reduction", reduction_name(r));
                         c.attr("ignore_index", o.ignore_index);
                         Tensor logits = c.input("logits", c.randn({8, 5}));
                         Tensor t = c.input("target", targets(c, {8}, 5, ignore, o.ignore_index));
                         c.output(cross_entropy(logits, t, o));
                       }});
    }
  }
  cases.push_back({"cross_entropy_custom_ignore_index", "cross_entropy", [](CaseBuilder& c) {
                     CrossEntropyOptions o;
                     o.ignore_index = 2;  // a valid class id
                     c.attr("reduction", "mean");
                     c.attr("ignore_index", 2);
                     Tensor logits = c.input("logits", c.randn({10, 4}));
                     c.output(cross_entropy(logits, c.input("target", targets(c, {10}, 4, false, 0)), o));
                   }});
  cases.push_back({"cross_entropy_spatial", "cross_entropy", [](CaseBuilder& c) {
                     CrossEntropyOptions o;
                     c.attr("reduction", "mean");
                     c.attr("ignore_index", o.ignore_index);
                     Tensor logits = c.input("logits", c.randn({2, 4, 3, 3}));
                     c.output(cross_entropy(logits, c.input("target", targets(c, {2, 3, 3}, 4, true, -100)), o));
                   }});
  cases.push_back({"cross_entropy_spatial_none", "cross_entropy", [](CaseBuilder& c) {
                     CrossEntropyOptions o;
                     o.reduction = Reduction::none;
                     c.attr("reduction", "none");
                     c.attr("ignore_index", o.ignore_index);
                     Tensor logits = c.input("logits", c.randn({2, 3, 4}));
                     c.output(cross_entropy(logits, c.input("target", targets(c, {2, 4}, 3, true, -100)), o));
                   }});
  cases.push_back({"cross_entropy_f64", "cross_entropy", [](CaseBuilder& c) {
                     c.attr("reduction", "mean");
                     c.attr("ignore_index", -100);
                     Tensor logits = c.input("logits", c.randn({6, 7}, DType::f64));
                     c.output(cross_entropy(logits, c.input("target", targets(c, {6}, 7, false, -100))));
                   }});
  cases.push_back({"cross_entropy_large", "cross_entropy", [](CaseBuilder& c) {
                     c.attr("reduction", "mean");
                     c.attr("ignore_index", -100);
                     Tensor logits = c.input("logits", c.randn({256, 100}) * 3.0);
                     c.output(cross_entropy(logits, c.input("target", targets(c, {256}, 100, true, -100))));
                   }});

  // ---- layer_norm ----
  for (auto [name, shape, normalized, affine, dtype] :
       {std::tuple<const char*, Shape, Shape, int, DType>{"layer_norm", {4, 6}, {6}, 2, DType::f32},
        {"layer_norm_no_affine", {4, 6}, {6}, 0, DType::f32},
        {"layer_norm_weight_only", {4, 6}, {6}, 1, DType::f32},
        {"layer_norm_2d_normalized", {2, 3, 4, 5}, {4, 5}, 2, DType::f32},
        {"layer_norm_f64", {3, 8}, {8}, 2, DType::f64},
        {"layer_norm_large", {64, 512}, {512}, 2, DType::f32}}) {
    cases.push_back({name, "layer_norm", [shape = shape, normalized = normalized, affine = affine, dtype = dtype](CaseBuilder& c) {
                       c.attr("normalized_shape", normalized);
                       c.attr("eps", 1e-5);
                       Tensor x = c.input("x", c.randn(shape, dtype) * 2.0 + 0.5);
                       Tensor w = affine >= 1 ? c.input("weight", c.randn(normalized, dtype)) : Tensor();
                       Tensor b = affine >= 2 ? c.input("bias", c.randn(normalized, dtype)) : Tensor();
                       c.output(layer_norm(x, normalized, w, b, 1e-5));
                     }});
  }
  cases.push_back({"layer_norm_noncontiguous", "layer_norm", [](CaseBuilder& c) {
                     c.attr("normalized_shape", std::vector<int64_t>{5});
                     c.attr("eps", 1e-3);
                     Tensor x = c.input("x", c.transposed(4, 5));
                     Tensor w = c.input("weight", c.randn({5}));
                     c.output(layer_norm(x, {5}, w, c.input("bias", c.randn({5})), 1e-3));
                   }});

  // ---- embedding ----
  cases.push_back({"embedding", "embedding", [](CaseBuilder& c) {
                     Tensor w = c.input("weight", c.randn({10, 4}));
                     c.output(embedding(w, c.input("indices", c.randint(0, 10, {3, 5}))));  // repeats likely
                   }});
  cases.push_back({"embedding_i32_indices", "embedding", [](CaseBuilder& c) {
                     Tensor w = c.input("weight", c.randn({6, 3}, DType::f64));
                     c.output(embedding(w, c.input("indices", c.randint(0, 6, {7}, DType::i32))));
                   }});
  cases.push_back({"embedding_large", "embedding", [](CaseBuilder& c) {
                     Tensor w = c.input("weight", c.randn({1000, 64}));
                     c.output(embedding(w, c.input("indices", c.randint(0, 1000, {32, 64}))));
                   }});

  // ---- dropout: compared through the mask cohort drew (out != 0), see compare.py ----
  for (auto [name, shape, p, training] :
       {std::tuple<const char*, Shape, double, bool>{"dropout", {16, 32}, 0.3, true},
        {"dropout_large", {256, 512}, 0.5, true},
        {"dropout_eval", {8, 8}, 0.3, false},
        {"dropout_p0", {8, 8}, 0.0, true}}) {
    cases.push_back({name, "dropout", [shape = shape, p = p, training = training](CaseBuilder& c) {
                       c.attr("p", p);
                       c.attr("training", training);
                       // |x| >= 0.5: an element is zero in the output exactly when it was dropped.
                       Tensor sign = c.bools(shape).to(DType::f32) * 2.0 - 1.0;
                       Tensor x = c.input("x", c.uniform(shape, 0.5, 2.0) * sign);
                       Generator gen(c.gen().seed() + 1);
                       // Eval and p = 0 return x itself: backward then starts at a leaf root.
                       c.output(dropout(x, p, training, &gen));
                     }});
  }

  // ---- scaled_dot_product_attention: (name, batch dims, L, S, E, Ev, causal, scale (0: default), dtype) ----
  for (auto [name, batch, L, S, E, Ev, causal, scale, dtype] :
       {std::tuple<const char*, Shape, int64_t, int64_t, int64_t, int64_t, bool, double, DType>{
            "sdpa", {2, 3}, 5, 7, 4, 6, false, 0.0, DType::f32},
        {"sdpa_causal", {2, 3}, 9, 9, 8, 8, true, 0.0, DType::f32},
        {"sdpa_causal_rectangular", {3}, 6, 11, 5, 3, true, 0.0, DType::f32},   // L < S: top-left mask
        {"sdpa_causal_more_queries", {2}, 10, 4, 5, 7, true, 0.0, DType::f32},  // L > S
        {"sdpa_scale", {2}, 4, 4, 3, 3, false, 0.7, DType::f32},
        {"sdpa_f64", {2, 2}, 6, 6, 4, 4, true, 0.0, DType::f64},
        {"sdpa_large", {2, 4}, 64, 64, 32, 32, true, 0.0, DType::f32},       // the gpt example's heads
        {"sdpa_no_batch", {}, 17, 19, 20, 18, true, 0.0, DType::f32}}) {     // tiles with remainders
    cases.push_back({name, "scaled_dot_product_attention", [=](CaseBuilder& c) {
                       c.attr("causal", causal);
                       c.attr("scale", scale);
                       auto shape = [&](int64_t rows, int64_t cols) {
                         Shape s = batch;
                         s.push_back(rows);
                         s.push_back(cols);
                         return s;
                       };
                       Tensor q = c.input("q", c.randn(shape(L, E), dtype));
                       Tensor k = c.input("k", c.randn(shape(S, E), dtype));
                       Tensor v = c.input("v", c.randn(shape(S, Ev), dtype));
                       c.output(scale > 0 ? scaled_dot_product_attention(q, k, v, causal, scale)
                                          : scaled_dot_product_attention(q, k, v, causal));
                     }});
  }
  cases.push_back({"sdpa_strided_views", "scaled_dot_product_attention", [](CaseBuilder& c) {
                     // q, k, v as (B, H, T, D) views of (B, T, H * D) tensors, transposed k inside.
                     c.attr("causal", true);
                     c.attr("scale", 0.0);
                     auto heads = [&](const Tensor& t) { return t.reshape({2, 6, 3, 4}).permute({0, 2, 1, 3}); };
                     Tensor q = c.input("q", heads(c.randn({2, 6, 12})));
                     Tensor k = c.input("k", heads(c.randn({2, 6, 12})));
                     Tensor v = c.input("v", c.randn({2, 3, 4, 6}).transpose(2, 3));
                     c.output(scaled_dot_product_attention(q, k, v, true));
                   }});
  for (auto [name, B, T, C, H, causal] : {std::tuple<const char*, int64_t, int64_t, int64_t, int64_t, bool>{
                                             "self_attention_causal", 2, 9, 12, 3, true},
                                         {"self_attention", 3, 5, 8, 2, false},
                                         {"self_attention_gpt", 4, 64, 128, 4, true}}) {
    cases.push_back({name, "self_attention", [=](CaseBuilder& c) {
                       c.attr("causal", causal);
                       c.attr("n_heads", H);
                       Tensor qkv = c.input("qkv", c.randn({B, T, 3 * C}));
                       c.output(self_attention(qkv, H, causal));
                     }});
  }
}

}  // namespace cohort::parity
