"""Hand pose metrics: the RHD / STB protocol of Zimmermann & Brox (ICCV 2017), on the per-joint errors of
``core.metrics`` (same input checks, NaN and mask rules)."""
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from core.metrics import _as_float64, _check_root, _prepare, root_relative

# Their evaluation (lmb-freiburg/hand3d, utils/general.py EvalUtil with eval3d.py / eval_full.py): the end-point error
# of each keypoint of the root-relative 3D; the PCK of a keypoint counts errors <= t on np.linspace(0, 50 mm, 20); the
# "AUC 20-50 mm" is the normalised trapezoid area under the keypoint-averaged PCK on the last 12 of those thresholds
# (21.05 .. 50 mm); the mean and median EPE are each keypoint's mean (median) error, averaged over the keypoints.
HAND_PCK_THRESHOLDS_MM = tuple(float(t) for t in np.linspace(0.0, 50.0, 20)[8:])


def _hand_errors(pred, target, mask, root: int, pred_unit_bone, name: str) -> Tuple[Tensor, Tensor]:
    """(N, J) root-relative end-point errors (NaN where the prediction is) and the (N, J) mask of evaluated joints."""
    pred, target, mask = _prepare(pred, target, mask, name, 3)
    _check_root(root, pred.shape[-2], name)
    joints = pred.shape[-2]
    pred, target, mask = pred.reshape(-1, joints, 3), target.reshape(-1, joints, 3), mask.reshape(-1, joints)
    pred_rel = root_relative(pred, root)
    mask = mask & mask[:, root:root + 1]
    if pred_unit_bone is not None:
        first, second = pred_unit_bone
        for joint in (first, second):
            _check_root(joint, joints, f"{name}: pred_unit_bone")
        bone = mask[:, first] & mask[:, second]
        length = torch.linalg.vector_norm(torch.where(bone[:, None], target[:, first] - target[:, second], 0.0), dim=-1)
        pred_rel = pred_rel * length[:, None, None]
        mask = mask & bone[:, None]
    return torch.linalg.vector_norm(pred_rel - root_relative(target, root), dim=-1), mask


def area_under_curve(thresholds, curve) -> Tensor:
    """The area under ``curve`` (..., K) over ``thresholds`` (K,) by the trapezoid rule, divided by the thresholds'
    range (1 for a curve that is 1 everywhere), as hand3d's ``calc_auc``."""
    thresholds = _as_float64(thresholds, "area_under_curve: thresholds")
    curve = _as_float64(curve, "area_under_curve: curve", device=thresholds.device)
    if thresholds.dim() != 1 or len(thresholds) < 2 or curve.shape[-1:] != thresholds.shape or \
            not bool((thresholds[1:] > thresholds[:-1]).all()):
        raise ValueError(f"area_under_curve: thresholds must be K >= 2 increasing values and the curve (..., K), got "
                         f"{tuple(thresholds.shape)} and {tuple(curve.shape)}")
    return torch.trapezoid(curve, thresholds, dim=-1) / (thresholds[-1] - thresholds[0])


def hand_pck(pred, target, thresholds_mm=HAND_PCK_THRESHOLDS_MM, mask=None, root: int = 0,
             pred_unit_bone: Optional[Tuple[int, int]] = None) -> Tensor:
    """(J, K) per joint, the fraction of evaluated poses whose root-relative end-point error is <= each threshold.

    ``pred``, ``target``: (..., J, 3) mm; both are made relative to ``root``, and a joint is evaluated where it and
    the root are (``mask``). ``pred_unit_bone = (a, b)``: ``pred`` is in units of the bone from joint a to b, and is
    scaled by that bone's length in ``target`` (hand3d's networks predict hands normalised by the middle finger's
    bone from knuckle to PIP joint and are evaluated after the true scale is applied: joints 12 and 11 of
    ``hand21``). A NaN prediction is a miss; a joint without evaluated poses is NaN.
    Deviation from hand3d: the prediction is made root-relative as well (its root error is 0, hand3d's is the
    network's distance from the origin).
    """
    errors, mask = _hand_errors(pred, target, mask, root, pred_unit_bone, "hand_pck")
    thresholds = _as_float64(thresholds_mm, "hand_pck: thresholds_mm", device=errors.device).reshape(-1)
    hits = ((errors[..., None] <= thresholds) & mask[..., None]).sum(0)      # NaN compares False: a miss
    evaluated = mask.sum(0)[:, None]
    return torch.where(evaluated > 0, hits.to(torch.float64) / evaluated.clamp_min(1), torch.nan)


def _per_joint_median(errors: Tensor, valid: Tensor) -> Tensor:
    """(J,) the median of each column's valid errors (the mean of the two middle ones for an even count), NaN for a
    column without any."""
    count = valid.sum(0)
    if not len(errors):
        return torch.full_like(count, torch.nan, dtype=errors.dtype)
    ordered = torch.sort(torch.where(valid, errors, torch.inf), dim=0).values
    lower = ordered.gather(0, ((count - 1).clamp_min(0) // 2)[None])[0]
    upper = ordered.gather(0, (count // 2)[None])[0]
    return torch.where(count > 0, (lower + upper) / 2, torch.nan)


def hand_pose_metrics(pred, target, mask=None, root: int = 0, thresholds_mm=HAND_PCK_THRESHOLDS_MM,
                      pred_unit_bone: Optional[Tuple[int, int]] = None) -> Dict:
    """JSON-ready hand pose metrics of poses (..., J, 3) in mm, as Zimmermann & Brox evaluate RHD and STB.

    ``epe_mean_mm`` / ``epe_median_mm``: each joint's mean (median) root-relative end-point error over its evaluated
    poses, averaged over the joints; ``pck``: the joint-averaged PCK at each of ``thresholds_mm`` (default: hand3d's
    12 thresholds of 21.05 .. 50 mm); ``auc``: its ``area_under_curve`` (the "AUC 20-50 mm"); ``root``, ``mask`` and
    ``pred_unit_bone`` as in ``hand_pck``. The errors skip NaN predictions (counted in ``num_invalid_joints``), which
    the PCK counts as misses; a value with nothing to average is None.
    """
    errors, evaluated = _hand_errors(pred, target, mask, root, pred_unit_bone, "hand_pose_metrics")
    valid = evaluated & torch.isfinite(errors)
    count = valid.sum(0)
    means = torch.where(valid, errors, 0.0).sum(0) / count.clamp_min(1)
    medians = _per_joint_median(errors, valid)
    curve = hand_pck(pred, target, thresholds_mm, mask, root, pred_unit_bone)                  # (J, K)
    thresholds = _as_float64(thresholds_mm, "hand_pose_metrics: thresholds_mm").reshape(-1)
    scored = ~torch.isnan(curve[:, 0])

    def mean_over_joints(values: Tensor, joints: Tensor) -> Optional[float]:
        return float(values[joints].mean()) if bool(joints.any()) else None

    pck = curve[scored].mean(0) if bool(scored.any()) else None
    return {
        "epe_mean_mm": mean_over_joints(means, count > 0),
        "epe_median_mm": mean_over_joints(medians, count > 0),
        "pck": None if pck is None else pck.tolist(),
        "thresholds_mm": thresholds.tolist(),
        "auc": None if pck is None or len(thresholds) < 2 else float(area_under_curve(thresholds, pck.cpu())),
        "num_joint_errors": int(count.sum()),
        "num_invalid_joints": int((evaluated & ~torch.isfinite(errors)).sum()),
    }
