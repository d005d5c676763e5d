"""3D and 2D pose metrics and their Human3.6M aggregation.

Per-joint errors (torch, any leading batch shape, computed in float64, vectorised):

- ``mpjpe``: Euclidean distance per joint, in the unit of the inputs (mm) -- protocol 1.
- ``p_mpjpe``: distance after aligning each predicted pose to its target with the least-squares
  similarity transform (scale, rotation with reflection correction via SVD, translation) -- protocol 2.
  Same definition as VideoPose3D's ``p_mpjpe``; deviation: the alignment uses only the joints the
  mask marks valid, and a collapsed prediction (all joints at one point) gets scale 0 instead of NaN.
- ``n_mpjpe``: distance after the optimal scale of the root-relative prediction (VideoPose3D's
  ``n_mpjpe``; deviation: both poses are made root-relative here, VideoPose3D expects them so).
- ``mpjve``: distance between first differences along time (velocity error, mm per frame), as
  VideoPose3D's ``mean_velocity_error``, kept per joint.
- ``pck``: per-joint fraction of 2D joints within a threshold (optionally normalised by a
  per-sample length such as the head size); the joint detection rate (JDR) of Epipolar
  Transformers / cross-view fusion is PCK with a threshold in pixels.

Aggregation follows the Human3.6M protocol: ``action_group`` strips the take suffix ("Walking 1" ->
"Walking") and maps the two S1 spellings "TakingPhoto" / "WalkingDog" to "Photo" / "WalkDog" as
VideoPose3D's data preparation does; the frame-wise average is the mean over all evaluated joint
errors; the action-wise average is the mean over action groups of the per-group means.
``pose_metrics`` builds the JSON-ready summary that the evaluator writes to metrics.json.

NaN policy.

- A mask is boolean, True = evaluate this joint (the target joint exists). Target joints that the
  mask marks valid must be finite (ValueError otherwise); masked target joints may hold anything.
- Per-joint functions return NaN exactly where a joint is not evaluated: masked out, predicted NaN,
  or (pose-level metrics) the pose is unusable. A NaN predicted joint makes its MPJPE NaN; a pose with
  any NaN predicted joint among the evaluated ones is NaN as a whole for P-MPJPE and N-MPJPE (the
  alignment needs the whole pose); a root-relative error is NaN where the joint or the root is NaN
  or masked; a velocity error is NaN where the joint (or root, for root-relative input) is invalid
  in either frame.
- For PCK a NaN prediction is a miss (a failed detection), not excluded; masked joints are
  excluded; a joint with no evaluated sample gets NaN.
- Averages skip NaN errors. ``pose_metrics`` never returns NaN: a value with nothing to average is
  None (JSON null), and the counts (``num_invalid_joints``, ``num_invalid_poses``,
  ``num_masked_joints``, each block's ``num_joint_errors``) say why.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from core.skeleton import Skeleton

# Human3.6M take suffix: "Walking 1", "Walking_1".
_TAKE_SUFFIX = re.compile(r"^(?P<base>.+?)[ _]\d+$")
# Alternative spellings of two Human3.6M actions (subject S1), canonical as in VideoPose3D.
_ACTION_SYNONYMS = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}


# ----- input checks --------------------------------------------------------------------------------
def _as_float64(x, name: str, device=None) -> Tensor:
    try:
        return torch.as_tensor(x, dtype=torch.float64, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from err


def _broadcast(value: Tensor, shape: torch.Size, name: str, of: str) -> Tensor:
    try:
        return torch.broadcast_to(value, shape)
    except RuntimeError as err:
        raise ValueError(f"{name} of shape {tuple(value.shape)} does not broadcast to the {of} shape "
                         f"{tuple(shape)}") from err


def _as_mask(mask, shape: torch.Size, name: str, device) -> Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    mask = torch.as_tensor(mask, device=device)
    if mask.dtype != torch.bool:
        raise ValueError(f"{name}: mask must be boolean (True = evaluate the joint), got {mask.dtype}")
    return _broadcast(mask, shape, f"{name}: mask", "joints'")


def _prepare(pred, target, mask, name: str, dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    """float64 pred / target of one shape (..., J, dim) and a boolean mask (..., J)."""
    pred = _as_float64(pred, f"{name}: pred")
    target = _as_float64(target, f"{name}: target", device=pred.device)
    if pred.dim() < 2 or pred.shape[-1] != dim:
        raise ValueError(f"{name}: pred must have shape (..., J, {dim}), got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match pred shape "
                         f"{tuple(pred.shape)}")
    mask = _as_mask(mask, pred.shape[:-1], name, pred.device)
    bad = mask & ~torch.isfinite(target).all(-1)
    if bad.any():
        raise ValueError(f"{name}: target has {int(bad.sum())} non-finite joints that the mask marks "
                         "valid; mask them out (mask=False) to exclude them")
    return pred, target, mask


def _check_root(root: int, num_joints: int, name: str) -> None:
    if not 0 <= root < num_joints:
        raise ValueError(f"{name}: root index {root} is outside 0..{num_joints - 1}")


def _check_names(names, n: int, what: str) -> np.ndarray:
    if isinstance(names, str) or len(names) != n:
        got = "a single string" if isinstance(names, str) else f"{len(names)} entries"
        raise ValueError(f"{what} must be a sequence of {n} strings (one per pose), got {got}")
    return np.asarray(names, dtype=str)


# ----- per-joint errors ----------------------------------------------------------------------------
def root_relative(points, root: int) -> Tensor:
    """Points (..., J, 3) minus their root joint, so the root is at the origin."""
    points = torch.as_tensor(points)
    if not points.is_floating_point():
        points = points.to(torch.float64)
    if points.dim() < 2 or points.shape[-1] != 3:
        raise ValueError(f"root_relative: points must have shape (..., J, 3), got {tuple(points.shape)}")
    _check_root(root, points.shape[-2], "root_relative")
    return points - points[..., root:root + 1, :]


def mpjpe(pred, target, mask=None) -> Tensor:
    """Per-joint position error (..., J): Euclidean distance, NaN where not evaluated."""
    pred, target, mask = _prepare(pred, target, mask, "mpjpe", 3)
    return torch.where(mask, torch.linalg.vector_norm(pred - target, dim=-1), torch.nan)


def align_similarity(pred, target, mask=None) -> Tensor:
    """Every joint of ``pred`` (..., J, 3) moved by the least-squares similarity that maps its valid joints
    (``mask``) onto ``target``'s: the scale ``a``, rotation ``Q`` (det +1) and translation ``t`` minimising
    ``sum_j |a Q p_j + t - x_j|^2`` over the valid joints, in closed form (Umeyama / orthogonal Procrustes: SVD
    of the centred cross-covariance, sign of the last singular vector flipped when the best orthogonal matrix
    is a reflection). Poses with a NaN predicted joint among the valid ones, or with no valid joint, are NaN.
    """
    pred, target, mask = _prepare(pred, target, mask, "align_similarity", 3)
    pose_ok = mask.any(-1) & (torch.isfinite(pred).all(-1) | ~mask).all(-1)
    used = mask & pose_ok[..., None]
    p = torch.where(used[..., None], pred, 0.0)
    x = torch.where(used[..., None], target, 0.0)
    count = used.sum(-1).clamp_min(1)[..., None, None]
    p_mean = p.sum(-2, keepdim=True) / count
    x_mean = x.sum(-2, keepdim=True) / count
    p0 = torch.where(used[..., None], p - p_mean, 0.0)
    # Cross-covariance X0^T P0 (= X^T P0, as P0 sums to zero) = U S V^T; the best rotation acting
    # on p is Q = U D V^T with D = diag(1, 1, det(U V^T)); the best scale is trace(S D) / |P0|^2.
    u, s, vh = torch.linalg.svd(x.transpose(-1, -2) @ p0)
    sign = torch.sign(torch.linalg.det(u @ vh))
    u = torch.cat([u[..., :2], u[..., 2:] * sign[..., None, None]], dim=-1)
    rotation = u @ vh
    trace = s[..., 0] + s[..., 1] + sign * s[..., 2]
    spread = torch.linalg.vector_norm(p0, dim=(-2, -1)).square()
    scale = torch.where(spread > 0, trace / spread.clamp_min(torch.finfo(spread.dtype).tiny), 0.0)
    aligned = scale[..., None, None] * ((pred - p_mean) @ rotation.transpose(-1, -2)) + x_mean
    return torch.where(pose_ok[..., None, None], aligned, torch.nan)


def p_mpjpe(pred, target, mask=None) -> Tensor:
    """Per-joint error (..., J) after the least-squares similarity alignment of each pose
    (``align_similarity``). Poses with a NaN predicted joint among the valid ones, or with no valid joint,
    are NaN as a whole."""
    pred, target, mask = _prepare(pred, target, mask, "p_mpjpe", 3)
    aligned = align_similarity(pred, target, mask)
    return torch.where(mask & torch.isfinite(aligned).all(-1), torch.linalg.vector_norm(aligned - target, dim=-1),
                       torch.nan)


def n_mpjpe(pred, target, mask=None, *, root: int) -> Tensor:
    """Per-joint error (..., J) of the root-relative prediction after its least-squares scale.

    Both poses are made root-relative; the scale ``sum_j <x_j, p_j> / sum_j |p_j|^2`` uses the valid
    joints. Poses with a NaN predicted joint among the valid ones, or a masked root, are NaN.
    """
    pred, target, mask = _prepare(pred, target, mask, "n_mpjpe", 3)
    _check_root(root, pred.shape[-2], "n_mpjpe")
    pose_ok = mask[..., root] & (torch.isfinite(pred).all(-1) | ~mask).all(-1)
    used = (mask & pose_ok[..., None])[..., None]
    p = torch.where(used, root_relative(pred, root), 0.0)
    x = torch.where(used, root_relative(target, root), 0.0)
    spread = (p ** 2).sum((-1, -2))
    scale = torch.where(spread > 0, (p * x).sum((-1, -2)) / spread.clamp_min(torch.finfo(spread.dtype).tiny), 0.0)
    errors = torch.linalg.vector_norm(scale[..., None, None] * p - x, dim=-1)
    return torch.where(used[..., 0], errors, torch.nan)


def mpjve(pred, target, mask=None) -> Tensor:
    """Per-joint velocity error (..., T-1, J) of sequences (..., T, J, 3), time on dim -3.

    ``|(p[t+1] - p[t]) - (x[t+1] - x[t])|``, in input units per frame; NaN where the joint is not
    evaluated in either frame. The T frames must be consecutive frames of one sequence.
    """
    pred, target, mask = _prepare(pred, target, mask, "mpjve", 3)
    if pred.dim() < 3:
        raise ValueError(f"mpjve: pred must have shape (..., T, J, 3), got {tuple(pred.shape)}")
    velocity_error = (pred[..., 1:, :, :] - pred[..., :-1, :, :]) - (target[..., 1:, :, :] - target[..., :-1, :, :])
    both = mask[..., 1:, :] & mask[..., :-1, :]
    return torch.where(both, torch.linalg.vector_norm(velocity_error, dim=-1), torch.nan)


# ----- 2D ------------------------------------------------------------------------------------------
def _per_sample(value, shape: torch.Size, name: str, device) -> Tensor:
    value = _as_float64(value, name, device=device)
    if not (torch.isfinite(value).all() and (value > 0).all()):
        raise ValueError(f"{name} must be finite and > 0")
    return _broadcast(value, shape, name, "samples'")


def _detection_rate(pred_2d, target_2d, threshold, mask, normalize, name: str) -> Tensor:
    pred, target, mask = _prepare(pred_2d, target_2d, mask, name, 2)
    sample_shape = pred.shape[:-2]
    distance = torch.linalg.vector_norm(pred - target, dim=-1)
    if normalize is not None:
        distance = distance / _per_sample(normalize, sample_shape, f"{name}: normalize", pred.device)[..., None]
    threshold = _per_sample(threshold, sample_shape, f"{name}: threshold", pred.device)[..., None]
    hit = (distance < threshold) & mask  # a NaN distance compares False: a miss
    num_joints = pred.shape[-2]
    evaluated = mask.reshape(-1, num_joints).sum(0)
    hits = hit.reshape(-1, num_joints).sum(0)
    return torch.where(evaluated > 0, hits.to(torch.float64) / evaluated.clamp_min(1), torch.nan)


def pck(pred_2d, target_2d, threshold, mask=None, normalize=None) -> Tensor:
    """Per-joint PCK (J,): fraction of evaluated samples with ``|pred - target| / normalize < threshold``.

    ``pred_2d``, ``target_2d``: (..., J, 2); ``threshold`` and ``normalize`` (e.g. head or bounding-box
    size in pixels): scalars or per-sample tensors broadcastable to (...); ``normalize=None`` compares
    pixel distances. Deviation from mmpose: one normaliser per sample, not per axis.
    """
    return _detection_rate(pred_2d, target_2d, threshold, mask, normalize, "pck")


def left_right_confusion(pred_2d, target_2d, min_separation_px: float, skeleton: Skeleton) \
        -> Dict[str, Optional[float]]:
    """How often a left/right joint pair of ``skeleton`` (for h36m17: hips, knees, ankles, shoulders, elbows,
    wrists) is confused in 2D, over the pairs whose true joints lie at least ``min_separation_px`` apart.

    A pair is *swapped* when the crossed assignment (left prediction to the right truth and back) is nearer
    than the right one, and *collapsed* when both predictions are nearer to one truth (both put on the
    same limb) than the right assignment; each is measured by the summed distance of the two joints.
    Returns percentages ``swapped_percent``, ``collapsed_percent`` and the number of pairs ``num_pairs``
    (None for the rates when no pair qualifies); pairs with a NaN prediction or a NaN truth are left out."""
    truth = torch.as_tensor(target_2d)
    pred, target, _ = _prepare(pred_2d, truth, torch.isfinite(truth).all(-1), "left_right_confusion", 2)
    if pred.shape[-2] != skeleton.num_joints:
        raise ValueError(f"left_right_confusion: expected the {skeleton.num_joints} joints of '{skeleton.name}', got "
                         f"{pred.shape[-2]}")
    left, right = list(skeleton.left_joints), list(skeleton.right_joints)
    pl, pr, tl, tr = pred[..., left, :], pred[..., right, :], target[..., left, :], target[..., right, :]

    def dist(a, b):
        return torch.linalg.vector_norm(a - b, dim=-1)

    correct = dist(pl, tl) + dist(pr, tr)
    swapped = dist(pl, tr) + dist(pr, tl)
    collapsed = torch.minimum(dist(pl, tl) + dist(pr, tl), dist(pl, tr) + dist(pr, tr))
    counted = (dist(tl, tr) >= min_separation_px) & torch.isfinite(correct)
    num_pairs = int(counted.sum())
    is_swapped = counted & (swapped < correct) & (swapped <= collapsed)
    is_collapsed = counted & (collapsed < correct) & (collapsed < swapped)

    def percent(hits):
        return 100.0 * float(hits.sum()) / num_pairs if num_pairs else None

    return {"swapped_percent": percent(is_swapped), "collapsed_percent": percent(is_collapsed), "num_pairs": num_pairs}


# ----- aggregation ---------------------------------------------------------------------------------
def action_group(action_name: str) -> str:
    """Human3.6M action group of a take name: "Walking 1" -> "Walking", "TakingPhoto" -> "Photo".

    Names without a take suffix (e.g. the synthetic "walk") are their own group.
    """
    match = _TAKE_SUFFIX.match(action_name.strip())
    base = match.group("base") if match else action_name.strip()
    return _ACTION_SYNONYMS.get(base, base)


def _group_actions(actions, n: int) -> Tuple[List[str], Tensor]:
    """Sorted action-group names and each pose's group index (N,), without a loop over poses."""
    names, inverse = np.unique(_check_names(actions, n, "actions"), return_inverse=True)
    groups, group_of_name = np.unique(np.asarray([action_group(a) for a in names], dtype=str),
                                      return_inverse=True)
    return [str(g) for g in groups], torch.as_tensor(group_of_name[inverse].reshape(-1), dtype=torch.long)


def _means_or_none(total: Tensor, count: Tensor) -> List[Optional[float]]:
    """Elementwise total / count as Python floats, None where the count is 0."""
    means = (total / count.clamp_min(1)).tolist()
    return [m if c > 0 else None for m, c in zip(means, count.tolist())]


def _per_group_means(errors: Tensor, group_index: Tensor, group_names: Sequence[str]) -> Dict[str, Optional[float]]:
    """Mean of the finite errors (N, J) of each group of poses; None for a group without any."""
    valid = torch.isfinite(errors)
    group_index = group_index.to(errors.device)
    total = torch.zeros(len(group_names), dtype=errors.dtype, device=errors.device)
    total.index_add_(0, group_index, torch.where(valid, errors, 0.0).sum(-1))
    count = torch.zeros(len(group_names), dtype=torch.long, device=errors.device)
    count.index_add_(0, group_index, valid.sum(-1))
    return dict(zip(group_names, _means_or_none(total, count)))


def _mean_of_groups(per_group: Dict[str, Optional[float]]) -> Optional[float]:
    means = [v for v in per_group.values() if v is not None]
    return sum(means) / len(means) if means else None


def _summarize(errors: Tensor, group_index: Tensor, group_names: Sequence[str],
               joint_names: Sequence[str]) -> Dict:
    valid = torch.isfinite(errors)
    values = torch.where(valid, errors, 0.0)
    per_action = _per_group_means(errors, group_index, group_names)
    return {
        "frame_avg": _means_or_none(values.sum()[None], valid.sum()[None])[0],
        "action_avg": _mean_of_groups(per_action),
        "per_action": per_action,
        "per_joint": dict(zip(joint_names, _means_or_none(values.sum(0), valid.sum(0)))),
        "num_joint_errors": int(valid.sum()),
    }


def _consecutive_pairs(n: int, sequence_ids, frame_indices, device) -> Tuple[Tensor, Tensor]:
    """Indices (first, second) of pose pairs that are consecutive frames of one sequence."""
    if sequence_ids is None:
        sequence = torch.zeros(n, dtype=torch.long)
    else:
        sequence = torch.as_tensor(
            np.unique(_check_names(sequence_ids, n, "sequence_ids"), return_inverse=True)[1].reshape(-1))
    if frame_indices is None:
        frame = torch.arange(n)
    else:
        frame = frame_indices.cpu() if isinstance(frame_indices, Tensor) else torch.as_tensor(np.asarray(frame_indices))
        if frame.shape != (n,) or frame.is_floating_point() or frame.dtype == torch.bool:
            raise ValueError(f"frame_indices must be {n} integers (one per pose), got dtype {frame.dtype} "
                             f"and shape {tuple(frame.shape)}")
        frame = frame.to(torch.long)
    order = torch.sort(frame, stable=True).indices
    order = order[torch.sort(sequence[order], stable=True).indices]
    first, second = order[:-1], order[1:]
    same_sequence = sequence[first] == sequence[second]
    gap = frame[second] - frame[first]
    if frame_indices is not None and (same_sequence & (gap == 0)).any():
        raise ValueError("pose_metrics: some (sequence id, frame index) pairs occur more than once; "
                         "sequence ids must name one pose per frame (e.g. include the camera)")
    keep = same_sequence & (gap == 1) if frame_indices is not None else same_sequence
    return first[keep].to(device), second[keep].to(device)


def pose_metrics(pred_3d, target_3d, actions: Sequence[str], skeleton: Skeleton,
                 sequence_ids: Optional[Sequence[str]] = None, frame_indices=None, absolute: bool = False,
                 joint_mask=None) -> Dict:
    """JSON-ready 3D pose metrics of N poses (N, J, 3) in mm, for metrics.json, in the joints of ``skeleton`` (root
    and per-joint names).

    - ``actions``: one Human3.6M-style action name per pose (grouped by ``action_group``).
    - ``sequence_ids`` / ``frame_indices``: for MPJVE, poses are sorted by (sequence, frame) and only
      frames one apart in the same sequence are differenced. ``sequence_ids=None``: one sequence;
      ``frame_indices=None``: each sequence's poses are consecutive frames in input order.
    - ``absolute``: predictions are in the targets' frame, so absolute MPJPE is meaningful
      (``mpjpe_mm``); root-relative metrics are always reported.
    - ``joint_mask``: boolean (J,) or (N, J), True = the target joint exists and is evaluated.

    Blocks ``mpjpe_mm`` (if absolute), ``mpjpe_root_relative_mm``, ``p_mpjpe_mm``, ``n_mpjpe_mm``,
    ``mpjve_mm_per_frame`` (on root-relative poses, as VideoPose3D) each hold ``frame_avg``,
    ``action_avg``, ``per_action``, ``per_joint`` and ``num_joint_errors``; see the module docstring
    for NaN handling and the counts.
    """
    pred, target, mask = _prepare(pred_3d, target_3d, joint_mask, "pose_metrics", 3)
    if pred.dim() != 3 or pred.shape[1] != skeleton.num_joints:
        raise ValueError(f"pose_metrics: poses must have shape (N, {skeleton.num_joints}, 3) in the joint order of "
                         f"skeleton '{skeleton.name}', got {tuple(pred.shape)}")
    root = skeleton.root
    n = pred.shape[0]
    group_names, group_index = _group_actions(actions, n)
    invalid_joints = mask & ~torch.isfinite(pred).all(-1)

    def summary(errors: Tensor, index: Tensor = group_index) -> Dict:
        return _summarize(errors, index, group_names, skeleton.joint_names)

    result = {
        "num_poses": n,
        "num_masked_joints": int((~mask).sum()),
        "num_invalid_joints": int(invalid_joints.sum()),
        "num_invalid_poses": int(invalid_joints.any(-1).sum()),
    }
    if absolute:
        result["mpjpe_mm"] = summary(mpjpe(pred, target, mask))
    pred_rel, target_rel = root_relative(pred, root), root_relative(target, root)
    mask_rel = mask & mask[:, root:root + 1]
    result["mpjpe_root_relative_mm"] = summary(mpjpe(pred_rel, target_rel, mask_rel))
    result["p_mpjpe_mm"] = summary(p_mpjpe(pred, target, mask))
    result["n_mpjpe_mm"] = summary(n_mpjpe(pred, target, mask, root=root))

    first, second = _consecutive_pairs(n, sequence_ids, frame_indices, pred.device)
    velocity_errors = mpjve(torch.stack([pred_rel[first], pred_rel[second]], 1),
                            torch.stack([target_rel[first], target_rel[second]], 1),
                            torch.stack([mask_rel[first], mask_rel[second]], 1))[:, 0]
    result["mpjve_mm_per_frame"] = {**summary(velocity_errors, group_index[first.cpu()]),
                                    "num_frame_pairs": int(first.numel())}
    return result

