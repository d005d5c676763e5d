"""ESMformer's error-aware adaptive weighting of training windows (reference: ``common/utils.py`` of
github.com/z0911k/ESMformer).

Each training frame carries a weight, 1 at the start, kept across epochs. For every training batch of
per-window losses ``l_i``:

1. statistics of the batch trimmed to its 5 %-95 % quantile range (sorted losses ``[floor(0.05 B),
   floor(0.95 B))``): mean ``mu`` and standard deviation ``sigma``; a ``sigma`` of 2 or more is replaced
   by 1e-10 (the reference's guard against a runaway update);
2. the weight of every frame of window i is multiplied by ``exp(-(l_i - mu) sigma)``: windows whose error
   is above the batch's typical error (outliers of the self-supervision, e.g. bad detections) lose
   weight, compounding over the iterations; frames shared by several windows of a batch get every
   window's factor;
3. a window's weight is the mean of its frames' weights (after the update), and the batch loss is
   ``sum_i w_i l_i / sum_i w_i``.

Fixes to the reference: weights are kept per take and frame (the reference gives all subjects one
shared array per action, and truncates takes longer than 6400 frames); with several processes (DDP)
the factors of all processes' batches are applied on every process, so the weights stay identical.
The weights are saved in the pipeline's checkpoints as the module's extra state (their number is the
training split's), so a resumed run continues them.
"""
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn


class ErrorAwareWeights(nn.Module):
    def __init__(self, trim: float = 0.05, max_sigma: float = 2.0):
        super().__init__()
        if not 0.0 <= trim < 0.5:
            raise ValueError(f"ErrorAwareWeights: trim must be in [0, 0.5), got {trim}")
        self.trim, self.max_sigma = trim, max_sigma
        self.frame_weights = torch.ones(0, dtype=torch.float64)   # sized by reset() or a checkpoint

    def reset(self, num_frames: int) -> None:
        """Weights of 1 for ``num_frames`` training frames (ids 0 .. num_frames - 1)."""
        self.frame_weights = torch.ones(num_frames, dtype=torch.float64, device=self.frame_weights.device)

    def get_extra_state(self):
        return {"frame_weights": self.frame_weights.cpu()}

    def set_extra_state(self, state) -> None:
        self.frame_weights = state["frame_weights"].to(torch.float64).clone()

    def batch_statistics(self, losses: Tensor):
        """(mu, sigma) of the batch's losses trimmed to their 5 %-95 % range (see the module docstring)."""
        ordered = losses.sort().values
        count = len(ordered)
        kept = ordered[int(self.trim * count):int((1 - self.trim) * count)]
        kept = kept if len(kept) else ordered
        mu, sigma = kept.mean(), kept.std(unbiased=False)
        return mu, torch.where(sigma >= self.max_sigma, torch.full_like(sigma, 1e-10), sigma)

    def forward(self, losses: Tensor, frame_ids: Tensor, counted: Optional[Tensor] = None) -> Tensor:
        """(B,) weights summing to 1 for the (B,) window losses, frames (B, T) ids (``sum(weights * losses)`` is
        the weighted loss); updates the frame weights first in training. Windows outside the (B,) mask
        ``counted`` (default: all; e.g. windows without any target) get weight 0, take no part in the batch
        statistics and leave their frames' weights unchanged."""
        if len(self.frame_weights) == 0:
            raise RuntimeError("ErrorAwareWeights: reset(num_frames) was not called before training")
        if self.frame_weights.device != losses.device:
            self.frame_weights = self.frame_weights.to(losses.device)
        if counted is None:
            counted = torch.ones_like(losses, dtype=torch.bool)
        first = counted[:, None].expand_as(frame_ids).clone()
        first[:, 1:] &= frame_ids[:, 1:] != frame_ids[:, :-1]   # each frame of a window once (edge padding repeats)
        if self.training:
            with torch.no_grad():
                delta = torch.zeros_like(self.frame_weights)
                if counted.any():
                    values = losses.detach().double()
                    mu, sigma = self.batch_statistics(values[counted])
                    log_factors = (-(values - mu) * sigma)[:, None].expand_as(frame_ids)
                    delta.index_add_(0, frame_ids[first], log_factors[first])
                if dist.is_available() and dist.is_initialized():   # every process, even without counted windows
                    dist.all_reduce(delta)
                self.frame_weights.mul_(delta.exp())
        per_frame = self.frame_weights[frame_ids] * first
        window_weights = per_frame.sum(1) / first.sum(1).clamp_min(1)
        return (window_weights / window_weights.sum().clamp_min(1e-300)).to(losses.dtype)
