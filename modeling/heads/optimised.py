"""Optimised triangulation head: RANSAC per frame, then the robust joint optimisation over time
(``core.geometry.optimised_triangulation``) for test-time use.

RANSAC (``modeling.heads.ransac``, with this head's view options) gives the starting points; the optimisation then
minimises the Huber / soft-L1 reprojection error of every view that passes ``min_confidence`` (``views`` "all") or
of RANSAC's inliers only ("inliers"; every passing view for the joints RANSAC could not triangulate), weighted by
its confidence whatever ``confidence_weighted`` says for the RANSAC refit, plus the smoothness of the trajectories and
the spread of the bone lengths (the skeleton's ``bones``, one length per bone and sequence, solved jointly).

Which samples form a sequence. A batch is whatever the loader stacked: the triangulation pipeline's test batches
are runs of frames cut from several sequences (possibly strided, ``DATASETS.TEST_STRIDE``, and cut at the batch's
ends). The head cannot know that from the 2D, so it is told: ``sequence`` (B,) labels and ``frames`` (B,) frame
numbers (the triangulation pipeline passes each sample's ``meta`` sequence and frame, ``takes_sequences``). The
samples are sorted by (sequence, frame), each sequence's frames are optimised together (time steps from the frame
numbers, so strides are honoured) with their own bone lengths, and the results are put back in the batch's order.
A sequence cut by the batch's end is optimised as two pieces. Without ``sequence`` (other callers, or
``over_time`` False) every sample is its own sequence: only the robust reprojection error is minimised (a bone
length free per frame constrains nothing), i.e. a per-frame robust refinement of RANSAC.

Joints that RANSAC could not triangulate are filled from the same joint's other frames of the sequence and then
pulled by their views (even a single one) and the priors; ``valid`` is True for them. Joints that no frame of the
sequence triangulated stay NaN. Not differentiable (the solve runs under its own optimiser): for test-time use.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from core.geometry.cameras import Cameras
from core.geometry.optimised_triangulation import check_settings, optimise_sequence
from core.registry import HEADS
from modeling.heads.ransac import RansacHead
from modeling.heads.result import HeadResult
from modeling.heads.views import view_weights

VIEWS = ("all", "inliers")  # the views whose reprojection error is minimised


@HEADS.register("optimised")
class OptimisedHead(nn.Module):
    takes_sequences = True  # forward takes each sample's sequence label and frame number

    def __init__(self, inlier_threshold_px: float = 15.0, confidence_weighted: bool = False,
                 min_confidence: float = 0.0, fallback_step: float = 0.0, undistort: bool = True,
                 loss: str = "huber", robust_px: float = 5.0, smooth_weight: float = 1.0, bone_weight: float = 1.0,
                 iterations: int = 100, over_time: bool = True, views: str = "all", bones: Sequence = ()):
        super().__init__()
        self.bones = tuple((int(p), int(c)) for p, c in bones)  # the skeleton's (parent, child) joints, () = none
        self.ransac = RansacHead(inlier_threshold_px, confidence_weighted, min_confidence, fallback_step, undistort)
        check_settings(loss, robust_px, smooth_weight, bone_weight, iterations)
        if views not in VIEWS:
            raise ValueError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")
        self.loss, self.robust_px, self.iterations, self.over_time = loss, float(robust_px), iterations, over_time
        self.smooth_weight, self.bone_weight, self.views = float(smooth_weight), float(bone_weight), views

    def forward(self, keypoints_2d: Tensor, confidence: Tensor, cameras: Cameras, features: Tensor = None,
                sequence: Optional[Tensor] = None, frames: Optional[Tensor] = None) -> HeadResult:
        """keypoints_2d (B,V,J,2) distorted pixels of ``cameras`` (B,V); confidence (B,V,J); ``sequence`` and
        ``frames`` (B,) integer labels and frame numbers (see the module docstring; ``features`` are not used)
        -> (B,J,3) mm; the result's ``weights`` are the optimisation's (the confidence of the views used)."""
        start = self.ransac(keypoints_2d, confidence, cameras)
        batch = keypoints_2d.shape[0]
        for name, value in (("sequence", sequence), ("frames", frames)):
            if value is not None and (not isinstance(value, Tensor) or tuple(value.shape) != (batch,)):
                raise ValueError(f"{name} must be a tensor of shape (B,) = ({batch},), got "
                                 f"{tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__}")
        if (sequence is None) != (frames is None):
            raise ValueError("sequence and frames must be given together (or neither)")
        device = keypoints_2d.device
        if sequence is None or not self.over_time:
            sequence, frames = torch.arange(batch, device=device), torch.zeros(batch, dtype=torch.int64, device=device)
        sequence, frames = sequence.to(device=device, dtype=torch.int64), frames.to(device=device, dtype=torch.int64)
        span = int(frames.max() - frames.min()) + 1 if batch else 1
        order = torch.argsort(sequence * span + (frames - frames.min() if batch else frames), stable=True)

        dtype = cameras.dtype
        weights = view_weights(confidence.to(dtype), True, self.ransac.min_confidence, self.ransac.fallback_step)
        weights = torch.where(torch.isfinite(keypoints_2d).all(-1), weights, torch.zeros_like(weights))
        if self.views == "inliers":  # RANSAC's inliers where it triangulated the joint, every view elsewhere
            weights = torch.where(start.used | ~start.valid.unsqueeze(1), weights, torch.zeros_like(weights))
        used_cameras = cameras if self.ransac.undistort else cameras.pinhole()
        fit = optimise_sequence(start.points_3d[order], keypoints_2d.to(dtype)[order], weights[order],
                                used_cameras[order], self.bones,
                                sequence_ids=sequence[order], frame_ids=frames[order], loss=self.loss,
                                robust_px=self.robust_px, smooth_weight=self.smooth_weight,
                                bone_weight=self.bone_weight, iterations=self.iterations)
        back = torch.argsort(order)
        points, valid = fit.points_3d[back], fit.valid[back]
        weights = torch.where(valid.unsqueeze(1), weights, torch.zeros_like(weights))
        return HeadResult(points, valid, (weights > 0).sum(1), weights, confidence)
