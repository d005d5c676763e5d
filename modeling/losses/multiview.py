"""Losses that train a lifter from calibrated multi-view 2D alone (no 3D labels): triangulated pseudo-labels,
rigid consistency between views and reprojection (Bouazizi et al., FG 2021, ``vru2020/Pose_3D``).

Every function takes per-view root-relative camera-frame predictions ``pred`` (B, V, J, 3) mm (the
root joint at 0), the input 2D ``keypoints_2d`` (B, V, J, 2) distorted pixels and the ``cameras``
(B, V). Pseudo-labels are the DLT of the input 2D of all views (``triangulate_cameras``: lens
distortion removed, float64), detached, expressed in each camera's frame. Each term is an L1
(mean absolute coordinate difference) over the non-root joints whose pseudo-label is valid, summed
over views or ordered view pairs as the reference sums its terms.
"""
from typing import Dict

import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from core.geometry.triangulation import triangulate_cameras


def _masked_l1(difference: Tensor, valid: Tensor) -> Tensor:
    """Mean |difference| over the valid (..., J) entries and the coordinates, for each leading index: (...,)."""
    weights = valid.to(difference.dtype)
    total = (difference.abs().sum(-1) * weights).sum(-1)
    return total / (weights.sum(-1).clamp(min=1) * difference.shape[-1])


def triangulated_pose(keypoints_2d: Tensor, cameras: Cameras, root: int):
    """The detached DLT of all views' 2D (B, V, J, 2), ``root`` the root joint's index: (root-relative world points (B, J, 3) mm, valid (B, J): the
    joint and the root were triangulated, root (B, 1, 3) world mm); NaNs of invalid points are zeros."""
    with torch.no_grad():
        result = triangulate_cameras(cameras, keypoints_2d.to(cameras.dtype))
        points = result.points_3d.nan_to_num(0.0)
        origin = points[:, root:root + 1]
    return points - origin, result.valid & result.valid[:, root:root + 1], origin


def pseudo_labels(keypoints_2d: Tensor, cameras: Cameras, root: int):
    """The DLT of all views' 2D: (targets (B, V, J, 3) root-relative camera-frame mm, valid (B, J) for the
    non-root joints, root_cam (B, V, 1, 3) the root in each camera's frame, mm)."""
    relative, valid, origin = triangulated_pose(keypoints_2d, cameras, root)
    views = keypoints_2d.shape[1]
    targets = (cameras.R.unsqueeze(2) @ relative.unsqueeze(1).unsqueeze(-1)).squeeze(-1)    # rotated into each view
    root_cam = cameras.world_to_camera(origin.unsqueeze(1).expand(-1, views, -1, -1))
    valid = valid.clone()
    valid[:, root] = False                                       # the root's offset is 0 by construction
    return targets, valid, root_cam


def relative_rotations(cameras: Cameras) -> Tensor:
    """(B, V, V, 3, 3): entry (i, j) = R_j R_i^T maps camera i's frame directions into camera j's."""
    R = cameras.R
    return R.unsqueeze(1) @ R.transpose(-1, -2).unsqueeze(2)


def multiview_consistency_losses(pred: Tensor, keypoints_2d: Tensor, cameras: Cameras, root: int,
                                 reprojection_weight: float = 0.0) -> Dict[str, Tensor]:
    """``triangulation``: sum over views of L1(pred_v, pseudo-label_v); ``rigid``: sum over ordered pairs
    i != j of L1(R_j R_i^T pred_i, pseudo-label_j) (the reference's ``transform_3d``: root-relative, so only
    the rotation acts); with ``reprojection_weight`` > 0, ``reprojection``: that weight x the sum over
    (source, target) view pairs of the L1 in pixels between the root-relative projection into the target
    view of the source view's prediction (placed at the pseudo-label's root) and the target view's
    root-relative input 2D."""
    targets, valid, root_cam = pseudo_labels(keypoints_2d, cameras, root)
    targets = targets.to(pred.dtype)
    views = pred.shape[1]
    valid_views = valid.unsqueeze(1).expand(-1, views, -1)
    losses = {"triangulation": _masked_l1(pred - targets, valid_views).mean(0).sum()}
    rotations = relative_rotations(cameras).to(pred.dtype)                       # B, i, j, 3, 3
    in_other_views = torch.einsum("bijxy,biky->bijkx", rotations, pred)         # B, i, j, J, 3
    pair_errors = _masked_l1(in_other_views - targets.unsqueeze(1), valid.unsqueeze(1).unsqueeze(1)
                             .expand(-1, views, views, -1))                      # B, i, j
    off_diagonal = ~torch.eye(views, dtype=torch.bool, device=pred.device)
    losses["rigid"] = pair_errors.mean(0)[off_diagonal].sum()
    if reprojection_weight > 0:
        losses["reprojection"] = reprojection_weight * _reprojection_l1(pred, keypoints_2d, cameras, valid, root_cam,
                                                                        root)
    return losses


def root_relative_reprojection(world: Tensor, cameras: Cameras, observed: Tensor, valid: Tensor, root: int):
    """The root-relative (joint ``root`` at 0) projection of ``world`` (..., J, 3) mm through ``cameras`` (batch shape ...) minus the
    root-relative ``observed`` 2D (..., J, 2) pixels (shapes broadcast): (difference (..., J, 2) pixels, zero where
    not finite; seen (..., J): ``valid`` and finite, so a joint behind a camera counts for nothing)."""
    projected = cameras.project(world)
    projected = projected - projected[..., root:root + 1, :]
    observed = observed.to(cameras.dtype)
    difference = projected - (observed - observed[..., root:root + 1, :])
    seen = valid & torch.isfinite(difference).all(-1)
    return difference.nan_to_num(0.0, posinf=0.0, neginf=0.0), seen


def _reprojection_l1(pred: Tensor, keypoints_2d: Tensor, cameras: Cameras, valid: Tensor, root_cam: Tensor,
                     root: int) -> Tensor:
    """Sum over (source, target) view pairs of the pixel L1 of the root-relative projections (see above)."""
    views = pred.shape[1]
    world = cameras.camera_to_world(pred.to(cameras.dtype) + root_cam)            # B, V(source), J, 3
    target_cameras = cameras.unsqueeze(1).expand(-1, views, views)                 # B, source, target
    difference, seen = root_relative_reprojection(world.unsqueeze(2).expand(-1, -1, views, -1, -1), target_cameras,
                                                  keypoints_2d.unsqueeze(1), valid[:, None, None], root)  # B, s, t, J
    return _masked_l1(difference, seen).mean(0).sum().to(pred.dtype)


def triangulation_reprojection_losses(pred: Tensor, keypoints_2d: Tensor, cameras: Cameras, root: int,
                                      loss_weight: float) -> Dict[str, Tensor]:
    """ESMformer's self-supervised losses of one root-relative world pose per window, ``pred`` (B, J, 3) metres,
    from the input 2D of all views ``keypoints_2d`` (B, V, J, 2) pixels, per window (B,):

    - ``triangulation``: ``loss_weight`` x the mean over the valid joints of the L1 norm (m) between ``pred`` and
      the root-relative DLT of the 2D (``triangulated_pose``);
    - ``reprojection``: (1 - ``loss_weight``) x the mean over views of the mean over valid joints of the L1 norm
      of the root-relative reprojection error (``pred`` placed at the DLT's root joint) in normalised screen
      coordinates (pixels x 2 / the image width: ``modeling.pipelines.targets.normalised_screen_coordinates``).
    A term whose weight is 0 is left out."""
    relative, valid, origin = triangulated_pose(keypoints_2d, cameras, root)
    pseudo, valid = (relative / 1000.0).to(pred.dtype), valid.to(pred.dtype)                # B, J, 3; B, J
    losses = {}
    if loss_weight > 0:
        error = (pred - pseudo).abs().sum(-1)
        losses["triangulation"] = loss_weight * (error * valid).sum(1) / valid.sum(1).clamp(min=1)
    if loss_weight < 1:
        world = (pred * 1000.0).to(cameras.dtype) + origin                                   # B, J, 3 mm
        views = keypoints_2d.shape[1]
        difference, seen = root_relative_reprojection(world.unsqueeze(1).expand(-1, views, -1, -1), cameras,
                                                      keypoints_2d, valid[:, None] > 0, root)  # B, V, J
        screen_scale = 2.0 / cameras.image_size[..., 0]                                      # B, V
        error = (difference * screen_scale[..., None, None]).abs().sum(-1).to(pred.dtype)
        seen = seen.to(pred.dtype)
        losses["reprojection"] = (1 - loss_weight) * ((error * seen).sum(-1) / seen.sum(-1).clamp(min=1)).mean(1)
    return losses
