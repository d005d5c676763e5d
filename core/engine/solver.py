"""Optimiser and learning-rate schedule builders (plain arguments; ``core.engine.run`` reads the config)."""
from typing import Sequence

import torch

OPTIMIZERS = ("adam", "amsgrad", "adamw", "sgd")
SCHEDULERS = ("exponential", "step", "cosine", "constant")


def build_optimizer(params, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9):
    """The Adam variants use PyTorch's fused kernels (CPU and CUDA): one call updates every parameter, about 4x
    faster than the per-tensor loop for the transformer lifters' ~1000 small tensors."""
    params = [p for p in params if p.requires_grad]
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, amsgrad=name == "amsgrad", fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"SOLVER.OPTIMIZER: unknown optimizer '{name}'; expected one of {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer, name: str, gamma: float, steps: Sequence[int], max_epochs: int,
                    halving_period: int = 0):
    """An epoch-level schedule (``scheduler.step()`` once per epoch). ``exponential`` multiplies the rate by
    ``gamma`` after every epoch, or, with ``halving_period`` n > 0, by 0.5 after every n-th epoch instead
    (ESMformer's schedule: 0.95, and 0.5 every 5th epoch). The arguments are checked with the config
    (``core.engine.run.check_solver``)."""
    if name == "exponential" and halving_period:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: gamma ** (epoch - epoch // halving_period) * 0.5 ** (epoch // halving_period))
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    if name == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(steps), gamma=gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))
    if name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise ValueError(f"SOLVER.LR_SCHEDULER: unknown scheduler '{name}'; expected one of {', '.join(SCHEDULERS)}")
