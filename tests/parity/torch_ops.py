"""The torch side of the parity cases: what each cohort op is in torch, and how close it must be.

OPS maps the `op` of a case (see cases_*.cpp) to (family, fn). fn(t, a, outs) gets the case's
inputs as an ordered dict name -> torch tensor (leaves that require grad where cohort's did), its
attributes `a`, and cohort's own outputs `outs` (only dropout looks at them), and returns a tensor
or a sequence of tensors in the order the case registered its outputs, or a dict keyed by the
names of a case's named outputs. The optimizer, schedule and module cases live in torch_optim.py
and torch_modules.py; their OPS and TOLERANCES are merged in at the end of this file.
"""
import math

import torch
import torch.nn.functional as F

import torch_modules
import torch_optim

# (atol, rtol) per op family and dtype: |cohort - torch| <= atol + rtol * |torch|, elementwise.
#   exact:       views, copies, joins, selections: values are moved, never computed.
#   elementwise: one rounding per element (plus the library's own exp/tanh/erf...).
#   reduction:   sums over a row or a window (sum, mean, softmax, layer_norm, pools, scatter, and
#                the gradient of any broadcast input).
#   matmul:      dot products over the inner dim (matmul, linear, conv2d).
# For reduction and matmul the atol is relative to the tensor's largest magnitude (at least 1):
# the rounding error of a sum depends on the size of its terms, not of its result, and a sum near
# zero is as inexact as any other. The order of summation differs between cohort, oneDNN and torch,
# so f32 sums of a few hundred terms differ by ~1e-6 of their terms' scale.
# bf16/f16 results are rounded to 8/11 significant bits: a 1-ulp difference in rounding is a
# relative error of 2^-8 (bf16) or 2^-11 (f16); the tolerances allow about two ulps, four for sums
# (a broadcast input's gradient in bf16 is several rounded ops, e.g. -g * a / (b * b), then a sum).
TOLERANCES = {
    "exact": {"f32": (0.0, 0.0), "f64": (0.0, 0.0), "bf16": (0.0, 0.0), "f16": (0.0, 0.0)},
    "elementwise": {"f32": (1e-6, 1e-5), "f64": (1e-12, 1e-10), "bf16": (1e-3, 1.6e-2), "f16": (1e-4, 2e-3)},
    "reduction": {"f32": (1e-5, 1e-4), "f64": (1e-12, 1e-10), "bf16": (3e-2, 3e-2), "f16": (3e-3, 4e-3)},
    "matmul": {"f32": (1e-5, 1e-4), "f64": (1e-12, 1e-10), "bf16": (1e-2, 3e-2), "f16": (1e-3, 5e-3)},
}
SCALED_ATOL = {"reduction", "matmul"}


def _opt(t, name):
    return t.get(name)


def _inf_to_none(v):
    return None if isinstance(v, str) or math.isinf(v) else v


def _slice(x, a):
    index = [slice(None)] * x.dim()
    index[a["dim"] % x.dim()] = slice(a["start"], a["end"], a["step"])
    return x[tuple(index)]


def _attention(q, k, v, causal, scale):
    """softmax(q k^T * scale, causally masked) v, op by op (torch 1.13 has no
    F.scaled_dot_product_attention)."""
    s = torch.matmul(q, k.transpose(-2, -1)) * scale
    if causal:
        L, S = q.shape[-2], k.shape[-2]
        s = s.masked_fill(torch.ones(L, S, dtype=torch.bool).tril().logical_not(), float("-inf"))
    return torch.matmul(torch.softmax(s, -1), v)


def _sdpa(t, a):
    scale = a["scale"] if a["scale"] > 0 else 1.0 / math.sqrt(t["q"].shape[-1])
    return _attention(t["q"], t["k"], t["v"], a["causal"], scale)


def _self_attention(t, a):
    x, H = t["qkv"], a["n_heads"]
    B, T, C3 = x.shape
    C = C3 // 3
    q, k, v = (p.reshape(B, T, H, C // H).transpose(1, 2) for p in x.split(C, 2))
    y = _attention(q, k, v, a["causal"], 1.0 / math.sqrt(C // H))
    return y.transpose(1, 2).reshape(B, T, C)


def _dropout(t, a, outs):
    x, p = t["x"], a["p"]
    if not a["training"] or p == 0:
        return F.dropout(x, p, training=a["training"])
    # torch cannot replay cohort's random numbers, so take the mask cohort drew (|x| >= 0.5 by
    # construction, so an output is zero exactly where the element was dropped) and check the rest:
    # the kept fraction is plausible for p, the survivors are x / (1 - p), and so is the gradient.
    mask = outs[0] != 0
    n, kept = mask.numel(), int(mask.sum())
    sigma = math.sqrt(n * p * (1 - p))
    if abs(kept - n * (1 - p)) > 6 * sigma:
        raise AssertionError(f"dropout kept {kept} of {n} elements; expected about {n * (1 - p):.0f} for p={p}")
    return x * mask / (1 - p)


_CMP = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge}
_DTYPES = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16, "f16": torch.float16,
           "i32": torch.int32, "i64": torch.int64, "bool": torch.bool}

OPS = {
    # ---- elementwise ----
    "add": ("elementwise", lambda t, a, o: torch.add(t["a"], t["b"])),
    "sub": ("elementwise", lambda t, a, o: torch.sub(t["a"], t["b"])),
    "mul": ("elementwise", lambda t, a, o: torch.mul(t["a"], t["b"])),
    "div": ("elementwise", lambda t, a, o: torch.div(t["a"], t["b"])),
    "maximum": ("elementwise", lambda t, a, o: torch.maximum(t["a"], t["b"])),
    "minimum": ("elementwise", lambda t, a, o: torch.minimum(t["a"], t["b"])),
    "pow": ("elementwise", lambda t, a, o: torch.pow(t["a"], t["b"])),
    "pow_scalar": ("elementwise", lambda t, a, o: torch.pow(t["x"], a["exponent"])),
    "neg": ("elementwise", lambda t, a, o: torch.neg(t["x"])),
    "abs": ("elementwise", lambda t, a, o: torch.abs(t["x"])),
    "relu": ("elementwise", lambda t, a, o: torch.relu(t["x"])),
    "gelu": ("elementwise", lambda t, a, o: F.gelu(t["x"])),
    "gelu_tanh": ("elementwise", lambda t, a, o: F.gelu(t["x"], approximate="tanh")),
    "tanh": ("elementwise", lambda t, a, o: torch.tanh(t["x"])),
    "sigmoid": ("elementwise", lambda t, a, o: torch.sigmoid(t["x"])),
    "exp": ("elementwise", lambda t, a, o: torch.exp(t["x"])),
    "log": ("elementwise", lambda t, a, o: torch.log(t["x"])),
    "sqrt": ("elementwise", lambda t, a, o: torch.sqrt(t["x"])),
    "square": ("elementwise", lambda t, a, o: torch.square(t["x"])),
    "logical_not": ("exact", lambda t, a, o: torch.logical_not(t["x"])),
    "where": ("exact", lambda t, a, o: torch.where(t["cond"], t["a"], t["b"])),
    "masked_fill": ("exact", lambda t, a, o: t["x"].masked_fill(t["mask"], float(a["value"]))),
    "clamp": ("exact", lambda t, a, o: torch.clamp(t["x"], min=_inf_to_none(a["min"]), max=_inf_to_none(a["max"]))),
    # ---- reductions ----
    "sum": ("reduction", lambda t, a, o: torch.sum(t["x"], a["dims"], a["keepdim"]) if "dims" in a else torch.sum(t["x"])),
    "mean": ("reduction", lambda t, a, o: torch.mean(t["x"], a["dims"], a["keepdim"]) if "dims" in a else torch.mean(t["x"])),
    "max": ("exact", lambda t, a, o: torch.max(t["x"])),
    "min": ("exact", lambda t, a, o: torch.min(t["x"])),
    "max_dim": ("exact", lambda t, a, o: tuple(torch.max(t["x"], a["dim"], a["keepdim"]))),
    "min_dim": ("exact", lambda t, a, o: tuple(torch.min(t["x"], a["dim"], a["keepdim"]))),
    "argmax": ("exact", lambda t, a, o: torch.argmax(t["x"], a["dim"], a["keepdim"])),
    "argmin": ("exact", lambda t, a, o: torch.argmin(t["x"], a["dim"], a["keepdim"])),
    # ---- views and copies ----
    "reshape": ("exact", lambda t, a, o: t["x"].reshape(a["shape"])),
    "permute": ("exact", lambda t, a, o: t["x"].permute(a["dims"])),
    "transpose": ("exact", lambda t, a, o: t["x"].transpose(a["dim0"], a["dim1"])),
    "narrow": ("exact", lambda t, a, o: t["x"].narrow(a["dim"], a["start"], a["length"])),
    "slice": ("exact", lambda t, a, o: _slice(t["x"], a)),
    "select": ("exact", lambda t, a, o: t["x"].select(a["dim"], a["index"])),
    "expand": ("exact", lambda t, a, o: t["x"].expand(a["shape"])),
    "squeeze": ("exact", lambda t, a, o: t["x"].squeeze()),
    "squeeze_dim": ("exact", lambda t, a, o: t["x"].squeeze(a["dim"])),
    "unsqueeze": ("exact", lambda t, a, o: t["x"].unsqueeze(a["dim"])),
    "flatten": ("exact", lambda t, a, o: t["x"].flatten(a["start_dim"], a["end_dim"])),
    "contiguous": ("exact", lambda t, a, o: t["x"].contiguous()),
    "clone": ("exact", lambda t, a, o: t["x"].clone()),
    "view_chain": ("exact", lambda t, a, o: t["x"].t().narrow(0, 1, 4).unsqueeze(0).permute(2, 0, 1)),
    "to": ("exact", lambda t, a, o: t["x"].to(_DTYPES[a["dtype"]])),
    # ---- linalg, conv, pools ----
    "matmul": ("matmul", lambda t, a, o: torch.matmul(t["a"], t["b"])),
    "bmm": ("matmul", lambda t, a, o: torch.bmm(t["a"], t["b"])),
    "linear": ("matmul", lambda t, a, o: F.linear(t["x"], t["weight"], _opt(t, "bias"))),
    "conv2d": ("matmul", lambda t, a, o: F.conv2d(t["x"], t["weight"], _opt(t, "bias"), a["stride"], a["padding"],
                                                  a["dilation"], a["groups"])),
    "max_pool2d": ("reduction", lambda t, a, o: F.max_pool2d(t["x"], a["kernel_size"], a["stride"] or None, a["padding"])),
    "avg_pool2d": ("reduction", lambda t, a, o: F.avg_pool2d(t["x"], a["kernel_size"], a["stride"] or None, a["padding"],
                                                             count_include_pad=a["count_include_pad"])),
    # ---- nn ----
    "softmax": ("reduction", lambda t, a, o: torch.softmax(t["x"], a["dim"])),
    "log_softmax": ("reduction", lambda t, a, o: torch.log_softmax(t["x"], a["dim"])),
    "cross_entropy": ("reduction", lambda t, a, o: F.cross_entropy(t["logits"], t["target"], ignore_index=a["ignore_index"],
                                                                   reduction=a["reduction"])),
    "layer_norm": ("reduction", lambda t, a, o: F.layer_norm(t["x"], a["normalized_shape"], _opt(t, "weight"),
                                                             _opt(t, "bias"), a["eps"])),
    "embedding": ("reduction", lambda t, a, o: F.embedding(t["indices"].long(), t["weight"])),
    "dropout": ("elementwise", _dropout),
    "scaled_dot_product_attention": ("matmul", lambda t, a, o: _sdpa(t, a)),
    "self_attention": ("matmul", lambda t, a, o: _self_attention(t, a)),
    # ---- joining, splitting, gathering ----
    "cat": ("exact", lambda t, a, o: torch.cat(list(t.values()), a["dim"])),
    "stack": ("exact", lambda t, a, o: torch.stack(list(t.values()), a["dim"])),
    "split": ("exact", lambda t, a, o: torch.split(t["x"], a["split_size"], a["dim"])),
    "chunk": ("exact", lambda t, a, o: torch.chunk(t["x"], a["chunks"], a["dim"])),
    "index_select": ("reduction", lambda t, a, o: torch.index_select(t["x"], a["dim"], t["index"])),
    "gather": ("reduction", lambda t, a, o: torch.gather(t["x"], a["dim"], t["index"])),
    "index_add": ("reduction", lambda t, a, o: torch.index_add(t["x"], a["dim"], t["index"], t["source"])),
    "scatter_add": ("reduction", lambda t, a, o: torch.scatter_add(t["x"], a["dim"], t["index"], t["source"])),
    # ---- factories and in-place ops (no gradients) ----
    "arange": ("elementwise", lambda t, a, o: torch.arange(a["start"], a["end"], a["step"], dtype=_DTYPES[a["dtype"]])),
    "full": ("exact", lambda t, a, o: torch.full(a["shape"], a["value"], dtype=_DTYPES[a["dtype"]])),
    "add_": ("elementwise", lambda t, a, o: t["self"].clone().add_(t["other"], alpha=a["alpha"])),
    "mul_": ("elementwise", lambda t, a, o: t["self"].clone().mul_(t["other"])),
    "mul_scalar_": ("elementwise", lambda t, a, o: t["self"].clone().mul_(a["value"])),
    "copy_": ("exact", lambda t, a, o: t["self"].clone().copy_(t["src"])),
    "fill_": ("exact", lambda t, a, o: t["self"].clone().fill_(a["value"])),
}
for _name, _fn in _CMP.items():
    OPS[_name] = ("exact", lambda t, a, o, fn=_fn: fn(t["a"], t["b"]))
    OPS[_name + "_scalar"] = ("exact", lambda t, a, o, fn=_fn: fn(t["a"], a["other"]))

DTYPES = _DTYPES

for _module in (torch_optim, torch_modules):
    OPS.update(_module.OPS)
    TOLERANCES.update(_module.TOLERANCES)
SCALED_ATOL |= torch_modules.SCALED_ATOL
