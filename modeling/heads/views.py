"""Which views a triangulation head uses for each joint, and with what weight.

A view takes part when its 2D confidence is at least ``min_confidence``. With ``fallback_step`` > 0, a
joint that fewer than two views pass is triangulated from the views above ``min_confidence - k step``,
with the smallest k >= 1 that leaves two: Epipolar Transformers' default ``pymvg`` triangulation
(``triangulate_pymvg``: threshold ``KEYPOINT.CONF_THRES`` 0.05, lowered by 0.05 while at most one view
is above it), so that every joint seen by two views is triangulated; without it such a joint comes out
as NaN. k is computed in closed form from the second-highest confidence, for all joints at once. The
first threshold keeps the views at it (``MODEL.HEAD.MIN_CONFIDENCE``: views below it are dropped), the
lowered ones only the views above them, as the reference's loop. The heads pass detector peaks clamped to
[0, 1], so views whose raw peak is negative all count as 0 (the reference tells them apart below 0).
"""
import torch
from torch import Tensor


def check_fallback_step(fallback_step: float) -> None:
    if not fallback_step >= 0:
        raise ValueError(f"fallback_step must be >= 0 (0 = off), got {fallback_step!r}")


def view_weights(confidence: Tensor, confidence_weighted: bool, min_confidence: float,
                 fallback_step: float = 0.0) -> Tensor:
    """confidence (..., V, J) -> DLT row weights (..., V, J): the confidence (or 1) of each used view, else 0.
    ``fallback_step`` 0: no fallback (``check_fallback_step`` is called by the heads when they are built)."""
    used = confidence >= min_confidence
    if fallback_step > 0 and confidence.shape[-2] >= 2:
        second = confidence.nan_to_num(float("-inf")).topk(2, dim=-2).values[..., 1:, :]   # (..., 1, J)
        lowerings = torch.floor((min_confidence - second) / fallback_step) + 1
        lowered = min_confidence - lowerings * fallback_step
        # the two most confident views always pass once lowered (no rounding of k can drop them)
        fallback = (confidence > lowered) | (confidence >= second)
        used = torch.where(second >= min_confidence, used, fallback)
    weights = confidence if confidence_weighted else torch.ones_like(confidence)
    return torch.where(used, weights, torch.zeros_like(weights))
