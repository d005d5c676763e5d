"""Optimised triangulation of whole sequences: what aniposelib's ``triangulate_optim`` does, batched in torch.

Starting from a per-frame triangulation (e.g. RANSAC), the 3D joints of every frame and one length per bone and
sequence are solved jointly by minimising, in float64 with L-BFGS (strong Wolfe line search)::

    sum_{t,v,j} w_tvj rho(|project_v(X_tj) - x_tvj|)                 robust reprojection, px^2
  + smooth_weight * sum_{t,j} |X''_tj|^2                              accelerations, (mm / frame^2)^2
  + bone_weight * sum_{t,(p,c)} (|X_tc - X_tp| - L_{s(t),(p,c)})^2   bone lengths, mm^2

divided by the number of joints T * J (which does not move the minimum, but keeps the scale of the cost, and so
the optimiser's tolerances, independent of the batch). ``project_v`` is ``Cameras.project`` (distorted pixels,
through each camera's lens); ``rho`` is the Huber or the soft-L1 loss with scale ``robust_px`` (both ``r^2`` near
0 and ``2 robust_px r`` far out, so a gross outlier pulls with a bounded force); ``w`` is the detector confidence
(0 for views that are missing or not to be used). ``X''`` is the second difference in time (divided by the frame
steps, so strided frames are handled), so constant velocities are not penalised.

Sequences: the frames come as one flat axis T. ``sequence_ids`` (T,) labels them; a run of consecutive equal
labels is one sequence, in time order (``frame_ids`` give the frame numbers, default 0, 1, 2, ...). The
smoothness term only links frames of the same run and each run has its own bone lengths (one person per run), so
many sequences are optimised in one vectorised solve. A run of a single frame gets the per-frame terms only
(robust reprojection; a bone length of its own, which then constrains nothing).

Missing joints: a joint whose initial point is not finite is started by linear interpolation in time between the
nearest frames of its run where it is known (the nearest one at the ends); its views, the smoothness and the
bone lengths then pull it. A joint never known in its run stays NaN, ``valid`` False, and takes no part.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from core.geometry.projection import check_shape

LOSSES = ("huber", "soft_l1")


class SequenceFit(NamedTuple):
    points_3d: Tensor     # (T, J, 3) world mm; NaN where not valid
    valid: Tensor         # (T, J) bool: finite (known, or filled from the joint's other frames)
    filled: Tensor        # (T, J) bool: valid joints that had no finite initial point
    bone_lengths: Tensor  # (S, num_bones) mm: the solved lengths of each run (sequence) of frames
    sequence: Tensor      # (T,) int64: the run (row of bone_lengths) of each frame
    cost: Tensor          # (2,): the cost before and after the optimisation


def robust_loss(squared: Tensor, scale: float, kind: str = "huber") -> Tensor:
    """rho(r) of residual norms r given as ``squared`` = r^2 (px^2), scale ``scale`` px: ``huber``: r^2 up to
    ``scale``, then ``2 scale r - scale^2``; ``soft_l1``: ``2 scale^2 (sqrt(1 + r^2 / scale^2) - 1)``. Both are
    r^2 near 0 and have finite gradients everywhere (r = 0 included)."""
    if kind == "huber":
        far = 2.0 * scale * squared.clamp_min(scale ** 2).sqrt() - scale ** 2
        return torch.where(squared < scale ** 2, squared, far)
    if kind == "soft_l1":
        return 2.0 * scale ** 2 * ((1.0 + squared / scale ** 2).sqrt() - 1.0)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")


def _runs(sequence_ids: Optional[Tensor], frames: int, device) -> Tensor:
    """(T,) int64: the index of the run of equal consecutive labels each frame belongs to (0, 1, ...)."""
    if sequence_ids is None:
        return torch.zeros(frames, dtype=torch.int64, device=device)
    change = torch.ones(frames, dtype=torch.int64, device=device)
    change[1:] = (sequence_ids[1:] != sequence_ids[:-1]).long()
    return change.cumsum(0) - 1


def fill_gaps(points_3d: Tensor, run: Tensor, frame_ids: Tensor) -> Tensor:
    """(T, J, 3) points (NaN = unknown) -> the same with every unknown joint linearly interpolated in time
    (``frame_ids`` (T,)) between the nearest known frames of its run (``run`` (T,)), or copied from the nearest
    one at the ends of the run; NaN where the joint is known nowhere in its run."""
    frames = points_3d.shape[0]
    index = torch.arange(frames, device=points_3d.device)
    known = torch.isfinite(points_3d).all(-1)                                            # T, J
    start = torch.zeros_like(run)
    start[1:] = (run[1:] != run[:-1]).long()
    start = torch.where(start.bool() | (index == 0), index, torch.zeros_like(index)).cummax(0).values   # T
    end = torch.zeros_like(run)
    end[:-1] = (run[1:] != run[:-1]).long()
    end = torch.where(end.bool() | (index == frames - 1), index, torch.full_like(index, frames))
    end = end.flip(0).cummin(0).values.flip(0)
    marked = index[:, None].expand_as(known)
    before = torch.where(known, marked, torch.full_like(marked, -1)).cummax(0).values      # last known at or before
    after = torch.where(known, marked, torch.full_like(marked, frames)).flip(0).cummin(0).values.flip(0)
    has_before, has_after = before >= start[:, None], after <= end[:, None]
    before_c, after_c = before.clamp(0, frames - 1), after.clamp(0, frames - 1)
    joint = torch.arange(points_3d.shape[1], device=points_3d.device).expand_as(known)
    p_before, p_after = points_3d[before_c, joint], points_3d[after_c, joint]             # T, J, 3
    time = frame_ids.to(points_3d.dtype)
    span = (time[after_c] - time[before_c])
    alpha = ((time[:, None] - time[before_c]) / torch.where(span > 0, span, torch.ones_like(span)))
    both = has_before & has_after
    mixed = p_before + alpha.unsqueeze(-1) * (p_after - p_before)
    one = torch.where(has_before.unsqueeze(-1), p_before, p_after)
    filled = torch.where(both.unsqueeze(-1), mixed, one)
    filled = torch.where((has_before | has_after).unsqueeze(-1), filled, torch.full_like(filled, float("nan")))
    return torch.where(known.unsqueeze(-1), points_3d, filled)


def _run_medians(values: Tensor, run: Tensor, runs: int) -> Tensor:
    """(T, K) values (NaN = missing) -> (runs, K): the median over the frames of each run (NaN if none)."""
    frames = values.shape[0]
    first = torch.zeros(runs, dtype=torch.int64, device=values.device).scatter_reduce(
        0, run, torch.arange(frames, device=values.device), "amin", include_self=False)
    position = torch.arange(frames, device=values.device) - first[run]
    padded = values.new_full((runs, frames, values.shape[1]), float("nan"))
    padded[run, position] = values
    return padded.nanmedian(dim=1).values


def _check_inputs(points_3d, keypoints_2d, confidence, cameras, bones, sequence_ids, frame_ids):
    check_shape(points_3d, (-1, -1, 3), "points_3d")
    if points_3d.dim() != 3:
        raise ValueError(f"points_3d must have shape (T, J, 3), got {tuple(points_3d.shape)}")
    frames, joints = points_3d.shape[:2]
    check_shape(keypoints_2d, (-1, -1, -1, 2), "keypoints_2d")
    if keypoints_2d.dim() != 4 or keypoints_2d.shape[0] != frames or keypoints_2d.shape[2] != joints:
        raise ValueError(f"keypoints_2d must have shape (T, V, J, 2) = ({frames}, V, {joints}, 2) like points_3d, "
                         f"got {tuple(keypoints_2d.shape)}")
    views = keypoints_2d.shape[1]
    if not isinstance(confidence, Tensor) or tuple(confidence.shape) != (frames, views, joints):
        raise ValueError(f"confidence must have shape (T, V, J) = ({frames}, {views}, {joints}), got "
                         f"{tuple(confidence.shape) if isinstance(confidence, Tensor) else type(confidence).__name__}")
    if not isinstance(cameras, Cameras) or tuple(cameras.batch_shape) not in ((views,), (frames, views)):
        raise ValueError(f"cameras must be Cameras of batch shape (V,) = ({views},) or (T, V) = ({frames}, {views}), "
                         f"got {tuple(cameras.batch_shape) if isinstance(cameras, Cameras) else type(cameras).__name__}")
    if any(len(b) != 2 or not all(0 <= int(j) < joints for j in b) for b in bones):
        raise ValueError(f"bones must be (parent, child) pairs of joint indices below {joints}, got {list(bones)}")
    for name, ids in (("sequence_ids", sequence_ids), ("frame_ids", frame_ids)):
        if ids is not None and (not isinstance(ids, Tensor) or tuple(ids.shape) != (frames,)):
            raise ValueError(f"{name} must be a tensor of shape (T,) = ({frames},), got "
                             f"{tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__}")


def check_settings(loss: str, robust_px: float, smooth_weight: float, bone_weight: float, iterations: int) -> None:
    """ValueError naming the first of ``optimise_sequence``'s settings that is out of range."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    for name, value in (("robust_px", robust_px), ("smooth_weight", smooth_weight), ("bone_weight", bone_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf") or \
                (name == "robust_px" and value == 0):
            raise ValueError(f"{name} must be a finite number >= 0 (robust_px > 0), got {value!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")


def optimise_sequence(points_3d: Tensor, keypoints_2d: Tensor, confidence: Tensor, cameras: Cameras,
                      bones: Sequence[Tuple[int, int]], sequence_ids: Optional[Tensor] = None,
                      frame_ids: Optional[Tensor] = None, loss: str = "huber", robust_px: float = 5.0,
                      smooth_weight: float = 1.0, bone_weight: float = 1.0, iterations: int = 100) -> SequenceFit:
    """Refine a per-frame triangulation over time (see the module docstring).

    Args:
        points_3d: (T, J, 3) initial world points, mm (NaN = unknown: filled from the joint's other frames).
        keypoints_2d: (T, V, J, 2) distorted pixels of ``cameras`` (NaN = missing).
        confidence: (T, V, J) weight of each observation (<= 0 or not finite: not used).
        cameras: (V,) or (T, V).
        bones: (parent, child) joint pairs whose length is constant within a sequence (e.g. a ``core.skeleton`` layout's ``bones``).
        sequence_ids: (T,) labels; runs of equal consecutive labels are separate sequences (default: one).
        frame_ids: (T,) frame numbers, increasing within a run (default 0 .. T-1): the time steps of smoothness.
        loss: ``huber`` or ``soft_l1``; robust_px: its scale in pixels.
        smooth_weight, bone_weight: weights (px^2 per (mm / frame^2)^2, per mm^2) of the two priors (>= 0).
        iterations: L-BFGS iterations (>= 1).
    """
    _check_inputs(points_3d, keypoints_2d, confidence, cameras, bones, sequence_ids, frame_ids)
    check_settings(loss, robust_px, smooth_weight, bone_weight, iterations)

    dtype, device = torch.float64, points_3d.device
    frames, joints = points_3d.shape[:2]
    if frames == 0:
        empty = torch.zeros(0, joints, dtype=torch.bool, device=device)
        return SequenceFit(points_3d.to(dtype).clone(), empty, empty, points_3d.new_zeros(0, len(bones), dtype=dtype),
                           torch.zeros(0, dtype=torch.int64, device=device), points_3d.new_zeros(2, dtype=dtype))
    cameras = cameras.to(dtype=dtype)
    keypoints_2d, confidence = keypoints_2d.to(dtype), confidence.to(dtype)
    run = _runs(sequence_ids, frames, device)
    runs = int(run[-1]) + 1 if frames else 0
    frame_ids = torch.arange(frames, device=device) if frame_ids is None else frame_ids
    time = frame_ids.to(dtype)
    bones_t = torch.as_tensor([tuple(b) for b in bones], dtype=torch.int64, device=device).reshape(-1, 2)

    known = torch.isfinite(points_3d).all(-1)
    start = fill_gaps(points_3d.to(dtype).detach(), run, frame_ids)
    active = torch.isfinite(start).all(-1)                                                    # T, J
    start = torch.where(active.unsqueeze(-1), start, torch.zeros_like(start))
    weights = torch.where(torch.isfinite(confidence) & (confidence > 0) & torch.isfinite(keypoints_2d).all(-1)
                          & active.unsqueeze(1), confidence, torch.zeros_like(confidence))
    observed = torch.where(weights.unsqueeze(-1) > 0, keypoints_2d, torch.zeros_like(keypoints_2d))

    # second differences over triples (t-1, t, t+1) of one run, divided by their time steps
    same = run[1:] == run[:-1]
    triple = same[1:] & same[:-1]                                                             # T-2
    step_before, step_after = (time[1:-1] - time[:-2]), (time[2:] - time[1:-1])
    triple = triple & (step_before > 0) & (step_after > 0)
    step_before = torch.where(triple, step_before, torch.ones_like(step_before))[:, None, None]
    step_after = torch.where(triple, step_after, torch.ones_like(step_after))[:, None, None]
    smooth_mask = (triple[:, None] & active[:-2] & active[1:-1] & active[2:]).to(dtype)       # T-2, J

    bone_mask = (active[:, bones_t[:, 0]] & active[:, bones_t[:, 1]]) if len(bones_t) else active[:, :0]
    lengths_now = (start[:, bones_t[:, 1]] - start[:, bones_t[:, 0]]).norm(dim=-1)           # T, nb
    lengths_start = _run_medians(torch.where(bone_mask, lengths_now, torch.full_like(lengths_now, float("nan"))),
                                 run, runs) if runs else lengths_now[:0]
    lengths_start = torch.nan_to_num(lengths_start)
    normaliser = float(max(frames * joints, 1))

    def cost(offset: Tensor, length_offset: Tensor) -> Tensor:
        points = start + offset
        residual = cameras.project(points.unsqueeze(1)) - observed                            # T, V, J, 2
        squared = residual.square().sum(-1)
        squared = torch.where(torch.isfinite(squared) & (weights > 0), squared, torch.zeros_like(squared))
        total = (weights * robust_loss(squared, float(robust_px), loss)).sum()
        if smooth_weight > 0 and frames >= 3:
            velocity_before = (points[1:-1] - points[:-2]) / step_before
            velocity_after = (points[2:] - points[1:-1]) / step_after
            acceleration = 2.0 * (velocity_after - velocity_before) / (step_before + step_after)
            total = total + smooth_weight * (smooth_mask * acceleration.square().sum(-1)).sum()
        if bone_weight > 0 and len(bones_t):
            vectors = points[:, bones_t[:, 1]] - points[:, bones_t[:, 0]]
            lengths = (vectors.square().sum(-1) + 1e-9).sqrt()
            target = (lengths_start + length_offset)[run]
            total = total + bone_weight * (bone_mask * (lengths - target).square()).sum()
        return total / normaliser

    # L-BFGS solves for scaled offsets y = sqrt(h) x, with h a diagonal estimate of the cost's curvature per joint
    # (reprojection: w (f / depth)^2 per view; priors: their weights times their terms' counts), so that joints
    # seen by many or few views, and the bone lengths, start on the same footing
    depth = cameras.world_to_camera(start.unsqueeze(1))[..., 2]                              # T, V, J
    pull = cameras.focal_lengths.mean(-1)[..., None] / depth.clamp_min(1.0)
    curvature = 2.0 * (weights * pull.square()).sum(1)                                        # T, J
    curvature = curvature + 12.0 * smooth_weight * (smooth_mask.sum(0, keepdim=True) > 0).to(dtype)
    if len(bones_t):
        degree = torch.zeros(joints, dtype=dtype, device=device).index_add_(
            0, bones_t.flatten(), torch.ones(bones_t.numel(), dtype=dtype, device=device))
        curvature = curvature + 2.0 * bone_weight * degree
    point_scale = curvature.clamp_min(1e-6).rsqrt().unsqueeze(-1)                             # T, J, 1
    length_scale = (2.0 * bone_weight * torch.zeros(runs, dtype=dtype, device=device).index_add_(
        0, run, torch.ones(frames, dtype=dtype, device=device))).clamp_min(1e-6).rsqrt().unsqueeze(-1)

    def scaled_cost(y: Tensor, z: Tensor) -> Tensor:
        return cost(point_scale * y, length_scale * z)

    y = torch.zeros_like(start, requires_grad=True)
    z = torch.zeros_like(lengths_start, requires_grad=True)
    with torch.enable_grad():
        before = scaled_cost(y, z).detach()
        optimiser = torch.optim.LBFGS([y, z], lr=1.0, max_iter=iterations, max_eval=2 * iterations,
                                      history_size=20, tolerance_grad=1e-12, tolerance_change=1e-16,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            value = scaled_cost(y, z)
            value.backward()
            return value
        optimiser.step(closure)
        after = scaled_cost(y, z).detach()
    offset, length_offset = point_scale * y.detach(), length_scale * z.detach()
    points = start + offset
    points = torch.where(active.unsqueeze(-1), points, torch.full_like(points, float("nan")))
    return SequenceFit(points, active, active & ~known, (lengths_start + length_offset).detach(), run,
                       torch.stack([before, after]))
