"""Cross-view association of detected people: which detection in each view is the same person.

For every frame, every combination of one candidate per view (the ``max_candidates`` most confident
detections of each view) is triangulated at once (confidence-weighted DLT of all joints), and the
combination whose median reprojection error over the confidently seen joints is smallest wins. Views
without any detection in a frame take no part in it. Batched over frames and combinations; the number
of combinations grows as ``max_candidates ** views``, so frames are processed in chunks.
"""
import itertools

import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from core.geometry.triangulation import reprojection_errors, triangulate_cameras

MAX_BATCH = 20000  # frames x combinations triangulated at once


def associate_people(keypoints_2d: Tensor, confidence: Tensor, cameras: Cameras, max_candidates: int = 3,
                     min_confidence: float = 0.2) -> Tensor:
    """keypoints_2d (T, V, P, J, 2) distorted pixels (NaN where missing), confidence (T, V, P, J), cameras (V,)
    -> (T, V) int64: the chosen detection per frame and view, -1 where the view has none."""
    frames, views, people = keypoints_2d.shape[:3]
    if confidence.shape != keypoints_2d.shape[:-1] or cameras.batch_shape != (views,):
        raise ValueError(f"associate_people: keypoints (T, V, P, J, 2), confidence (T, V, P, J) and cameras (V,) "
                         f"expected, got {tuple(keypoints_2d.shape)}, {tuple(confidence.shape)} and "
                         f"{tuple(cameras.batch_shape)}")
    confidence = torch.nan_to_num(confidence, nan=0.0)
    total = confidence.sum(-1)                                                       # T, V, P
    order = total.argsort(-1, descending=True)[..., :max_candidates]                 # T, V, C
    present = total.gather(-1, order) > 0                                            # T, V, C
    candidates = order.shape[-1]
    combos = torch.tensor(list(itertools.product(range(candidates), repeat=views)), dtype=torch.int64)  # N, V
    choice = torch.empty(frames, views, dtype=torch.int64)
    chunk = max(1, MAX_BATCH // len(combos))
    view_index = torch.arange(views)
    for start in range(0, frames, chunk):
        t = slice(start, start + chunk)
        slot_ok = present[t][:, view_index, combos]                                  # t, N, V
        has_any = present[t][..., 0]                                                 # t, V
        # a combination may use an empty slot only where the view has no detection at all
        allowed = (slot_ok | ~has_any[:, None]).all(-1)                              # t, N
        person = order[t][:, view_index, combos]                                     # t, N, V
        gather = person[..., None, None].expand(-1, -1, -1, *keypoints_2d.shape[-2:])
        points = keypoints_2d[t][:, None].expand(-1, len(combos), -1, -1, -1, -1)
        points = points.gather(3, gather.unsqueeze(3)).squeeze(3)                   # t, N, V, J, 2
        weights = confidence[t][:, None].expand(-1, len(combos), -1, -1, -1).gather(
            3, person[..., None, None].expand(-1, -1, -1, 1, confidence.shape[-1])).squeeze(3)  # t, N, V, J
        weights = torch.where(slot_ok[..., None] & (weights >= min_confidence), weights, torch.zeros_like(weights))
        triangulated = triangulate_cameras(cameras, points.to(cameras.dtype), weights.to(cameras.dtype))
        errors = reprojection_errors(triangulated.points_3d, cameras, points.to(cameras.dtype))  # t, N, V, J
        errors = torch.where(weights > 0, errors, torch.full_like(errors, float("nan")))
        score = errors.flatten(-2).nanmedian(-1).values                              # t, N
        score = torch.where(allowed & torch.isfinite(score), score, torch.full_like(score, float("inf")))
        best = score.argmin(-1)                                                      # t
        picked = person[torch.arange(len(best)), best]                               # t, V
        choice[t] = torch.where(has_any, picked, torch.full_like(picked, -1))
    return choice
