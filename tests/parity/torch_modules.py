"""The torch side of the module cases (cases_modules.cpp): the torch module of the same structure.

cohort names parameters as PyTorch does: Linear, Conv2d, LayerNorm and Embedding "weight"/"bias",
Sequential children "0", "1", .... Those modules are compared with the identity map, so a renamed
parameter fails the state_dict key check. The attention block, the transformer block and the GPT
come from benchmarks/training/torch_models.py (qkv Linear then split, pre-norm block, exact
GELU), the same definitions the training benchmark uses, and their names are mapped explicitly (NAME_MAPS), though today they coincide.
"""
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.stateless import functional_call

# Whole layers: a few dot products and normalisations deep, gradients summed over the batch.
TOLERANCES = {
    "module": {"f32": (1e-5, 1e-4), "f64": (1e-11, 1e-9), "bf16": (3e-2, 3e-2), "f16": (3e-3, 5e-3)},
}
SCALED_ATOL = {"module"}


# The example models' torch definitions, shared with the training benchmark (one source).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "training"))
from torch_models import Attention, Block, Gpt  # noqa: E402,F401


# cohort name -> torch name, for the modules whose structure is written here.
_ATTENTION = {"qkv.weight": "qkv.weight", "qkv.bias": "qkv.bias", "proj.weight": "proj.weight",
              "proj.bias": "proj.bias"}
_BLOCK = {"ln1.weight": "ln1.weight", "ln1.bias": "ln1.bias", "ln2.weight": "ln2.weight", "ln2.bias": "ln2.bias",
          "fc.weight": "fc.weight", "fc.bias": "fc.bias", "fc_proj.weight": "fc_proj.weight",
          "fc_proj.bias": "fc_proj.bias",
          **{"attn." + k: "attn." + v for k, v in _ATTENTION.items()}}


def _gpt_names(layers):
    names = {"tok.weight": "tok.weight", "pos.weight": "pos.weight", "ln_f.weight": "ln_f.weight",
             "ln_f.bias": "ln_f.bias", "head.weight": "head.weight"}
    for i in range(layers):
        names.update({f"blocks.{i}.{k}": f"blocks.{i}.{v}" for k, v in _BLOCK.items()})
    return names


def _layer(spec):
    """One layer from cases_modules.cpp's layer_from_spec format."""
    kind, *n = spec.split()
    n = [int(v) for v in n]
    if kind == "linear":
        return nn.Linear(n[0], n[1])
    if kind == "conv2d":
        return nn.Conv2d(n[0], n[1], n[2], stride=n[3], padding=n[4])
    if kind == "layer_norm":
        return nn.LayerNorm(n[0])
    simple = {"max_pool2d": lambda: nn.MaxPool2d(n[0]), "avg_pool2d": lambda: nn.AvgPool2d(n[0]),
              "flatten": nn.Flatten, "relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"),
              "tanh": nn.Tanh, "dropout": lambda: nn.Dropout(0.0)}
    return simple[kind]()


def _build(a):
    """The torch module for the case's attributes, and its cohort -> torch name map (None: identity)."""
    kind = a["module"]
    if kind == "linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=a["bias"]), None
    if kind == "conv2d":
        return nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"], stride=a["stride"],
                         padding=a["padding"], dilation=a["dilation"], groups=a["groups"], bias=a["bias"]), None
    if kind == "layer_norm":
        return nn.LayerNorm(a["normalized_shape"], eps=a["eps"], elementwise_affine=a["elementwise_affine"]), None
    if kind == "embedding":
        return nn.Embedding(a["num_embeddings"], a["embedding_dim"]), None
    if kind == "mse_loss":
        return nn.MSELoss(reduction=a["reduction"]), None
    if kind == "cross_entropy_loss":
        return nn.CrossEntropyLoss(ignore_index=a["ignore_index"], reduction=a["reduction"]), None
    if kind == "attention":
        return Attention(a["d_model"], a["n_heads"]), _ATTENTION
    if kind == "block":
        return Block(a["d_model"], a["n_heads"]), _BLOCK
    if kind == "gpt":
        return Gpt(a["vocab"], a["context"], a["d_model"], a["n_heads"], a["layers"]), _gpt_names(a["layers"])
    if kind == "sequential":
        return nn.Sequential(*[_layer(s) for s in a["layers"]]), None
    raise ValueError(f"torch_modules: unknown module '{kind}'")


def _module(t, a, outs):
    """Loads cohort's parameters into the torch module and runs it on the same input.

    The parameters are the case's leaves (functional_call puts them in place of the module's own),
    so backward writes their gradients where compare.py looks for them.
    """
    module, names = _build(a)
    unmapped = [k for k in a["state_dict_keys"] if names is not None and k not in names]
    if unmapped:
        raise AssertionError(f"cohort parameters with no torch name in NAME_MAPS: {unmapped}")
    rename = (lambda k: names[k]) if names is not None else (lambda k: k)
    ours, theirs = {rename(k) for k in a["state_dict_keys"]}, set(module.state_dict().keys())
    if ours != theirs:
        raise AssertionError(f"state_dict keys differ: only cohort has {sorted(ours - theirs)}, "
                             f"only torch has {sorted(theirs - ours)}")
    params = {rename(n): t[n] for n in a["params"]}
    module.load_state_dict({k: v.detach() for k, v in params.items()}, strict=True)  # checks the shapes too
    if "input" in t:  # a loss
        return module(t["input"], t["target"])
    return functional_call(module, params, (t["x"],))


OPS = {"module": ("module", _module)}
