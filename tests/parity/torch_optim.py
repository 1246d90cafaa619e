"""The torch side of the optimizer, clip_grad_norm and LR-schedule cases (cases_optim.cpp,
cases_schedule.cpp). Each function returns a dict keyed by the names cohort gave its outputs;
compare.py reports a name that only one side has as a failure, so a state buffer that torch.optim
keeps and cohort does not (or the other way round) fails the case.
"""
import math
import warnings

import torch

# Updates of one element each (a few roundings): like the elementwise family.
TOLERANCES = {
    "optimizer": {"f32": (1e-6, 1e-5), "f64": (1e-12, 1e-10), "bf16": (1e-3, 1.6e-2), "f16": (1e-4, 2e-3)},
}


def _optimizer(t, a, outs):
    """Runs a["steps"] steps of torch.optim on the case's parameters and per-step gradients."""
    names = a["params"]
    params = {n: t[n].detach().clone().requires_grad_() for n in names}
    groups = [{"params": [], "lr": lr, "weight_decay": wd} for lr, wd in zip(a["group_lr"], a["group_weight_decay"])]
    for n, g in zip(names, a["group_of"]):
        groups[g]["params"].append(params[n])
    lr = a["group_lr"][0]
    if a["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=a["momentum"], dampening=a["dampening"], nesterov=a["nesterov"])
    else:
        cls = torch.optim.Adam if a["optimizer"] == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=lr, betas=tuple(a["betas"]), eps=a["eps"])
    for step in range(a["steps"]):
        for n, p in params.items():
            key = f"{n}#grad{step}"  # absent: no gradient this step
            p.grad = t[key].detach().clone() if key in t else None
        opt.step()

    out = {n: p.detach() for n, p in params.items()}
    for n, p in params.items():
        for buffer, value in opt.state.get(p, {}).items():
            if value is None:  # SGD without momentum keeps momentum_buffer = None
                continue
            # torch keeps a parameter's step count as a float tensor; cohort as i64.
            out[f"{n}.{buffer}"] = value.to(torch.int64) if buffer == "step" else value
    out["step"] = torch.tensor(a["steps"], dtype=torch.int64)  # cohort counts optimizer.step() calls
    for i, g in enumerate(opt.param_groups):
        out[f"group.{i}.lr"] = torch.tensor(g["lr"], dtype=torch.float64)
    return out


def _clip_grad_norm(t, a, outs):
    params, named = [], {}
    for n in a["params"]:
        if n == a["no_grad"]:
            params.append(torch.zeros(1, requires_grad=True))  # no gradient: skipped
            continue
        p = torch.zeros_like(t[n], requires_grad=True)
        p.grad = t[n].detach().clone()
        params.append(p)
        named[n] = p
    norm = torch.nn.utils.clip_grad_norm_(params, a["max_norm"])
    out = {"total_norm": norm}
    for n, p in named.items():
        out[f"{n}.grad"] = p.grad
    return out


def _warmup_cosine(a):
    """cohort's WarmupCosineLR factor, as documented in cases_schedule.cpp."""
    warmup, total, low = a["warmup"], a["total"], a["min_factor"]

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        if step >= total:
            return low
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    return factor


def _lr_sequence(opt, scheduler, steps):
    """Every group's lr after construction and after each step: (groups, steps + 1)."""
    rates = [[g["lr"]] for g in opt.param_groups]
    for _ in range(steps):
        opt.step()  # no gradients: a no-op, but torch wants it before scheduler.step()
        scheduler.step()
        for seq, g in zip(rates, opt.param_groups):
            seq.append(g["lr"])
    return rates


def _lr_schedule(t, a, outs):
    lrs, steps = a["group_lr"], a["steps"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's deprecation chatter
        if a["reference"] == "sequential":
            # CosineAnnealingLR's eta_min is absolute, so one optimizer per group (eta_min = min * lr).
            rates = []
            w, total = a["warmup"], a["total"]
            for lr in lrs:
                opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr)
                warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / w, end_factor=1.0, total_iters=w - 1)
                cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - w, eta_min=a["min_factor"] * lr)
                sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[w])
                rates += _lr_sequence(opt, sched, steps)
        else:
            opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs], lr=lrs[0])
            if a["reference"] == "step_lr":
                sched = torch.optim.lr_scheduler.StepLR(opt, a["step_size"], a["gamma"])
            else:
                sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(a))
            rates = _lr_sequence(opt, sched, steps)
    return {"lr": torch.tensor(rates, dtype=torch.float64)}


OPS = {
    "optimizer": ("optimizer", _optimizer),
    "clip_grad_norm": ("optimizer", _clip_grad_norm),
    "lr_schedule": ("optimizer", _lr_schedule),
}
