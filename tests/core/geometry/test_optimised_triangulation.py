"""Optimised triangulation of sequences (core/geometry/optimised_triangulation.py): on a walking body with known 3D,
noisy 2D and outliers, it beats the per-frame DLT and RANSAC, holds the bone lengths, fills gaps, and stays finite."""
import pytest
import torch

from core.geometry.optimised_triangulation import fill_gaps, optimise_sequence, robust_loss
from core.geometry.triangulation import triangulate_cameras
from core.skeleton import H36M17
from datasets.synthetic.dataset import SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.heads.ransac import RansacHead

FRAMES = 40


@pytest.fixture(scope="module")
def walk():
    """A 40-frame walk seen by 4 cameras: truth (T, J, 3), its exact pixels (T, V, J, 2) and the cameras (V,)."""
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=FRAMES,
                                     noise=DetectorNoise.none()))
    seq = world.sequences[0]
    truth = torch.from_numpy(seq.keypoints_3d).double()
    return truth, seq.cameras.project(truth[:, None]), seq.cameras


def noisy(pixels, seed=0, jitter=3.0, outliers=0.05):
    """Gaussian jitter on every observation and, for a fraction of them, an 80-120 px outlier of confidence 0.3."""
    g = torch.Generator().manual_seed(seed)
    observed = pixels + jitter * torch.randn(pixels.shape, generator=g, dtype=pixels.dtype)
    bad = torch.rand(pixels.shape[:-1], generator=g) < outliers
    direction = torch.nn.functional.normalize(torch.randn(pixels.shape, generator=g, dtype=pixels.dtype), dim=-1)
    offset = direction * (80 + 40 * torch.rand(pixels.shape[:-1], generator=g, dtype=pixels.dtype)).unsqueeze(-1)
    observed = torch.where(bad.unsqueeze(-1), observed + offset, observed)
    confidence = torch.where(bad, 0.3, 0.9).to(pixels.dtype)
    return observed, confidence


def mpjpe(points, truth):
    return (points - truth).norm(dim=-1).nanmean().item()


def test_beats_dlt_and_ransac_and_holds_the_bones(walk):
    truth, pixels, cameras = walk
    observed, confidence = noisy(pixels)
    cams = cameras.expand(FRAMES, len(cameras))
    dlt = triangulate_cameras(cams, observed, confidence).points_3d
    ransac = RansacHead(15.0, confidence_weighted=True)(observed, confidence, cams)
    fit = optimise_sequence(ransac.points_3d, observed, confidence, cameras, H36M17.bones)
    assert fit.valid.all() and not fit.filled.any() and fit.cost[1] < fit.cost[0]
    assert mpjpe(fit.points_3d, truth) < 0.7 * min(mpjpe(dlt, truth), mpjpe(ransac.points_3d, truth))
    parents, children = torch.tensor(H36M17.bones).T
    lengths = lambda p: (p[:, children] - p[:, parents]).norm(dim=-1)  # noqa: E731
    assert lengths(truth).std(0).max() < 1e-3                           # the synthetic body is rigid (float32)
    assert lengths(fit.points_3d).std(0).mean() < 0.2 * lengths(ransac.points_3d).std(0).mean()
    assert (fit.bone_lengths[0] - lengths(truth)[0]).abs().max() < 10.0
    assert fit.bone_lengths.shape == (1, len(H36M17.bones)) and (fit.sequence == 0).all()


def test_gaps_are_filled_from_the_other_frames_and_the_remaining_views(walk):
    truth, pixels, cameras = walk
    observed, confidence = noisy(pixels, seed=1, outliers=0.0)
    start = triangulate_cameras(cameras.expand(FRAMES, len(cameras)), observed, confidence).points_3d.clone()
    start[10:16, 13] = float("nan")                       # the left wrist lost for 6 frames ...
    confidence[10:16, :, 13] = 0.0                        # ... and seen by no view there
    confidence[20:24, 1:, 5] = 0.0                        # the left knee: one view left for 4 frames
    start[20:24, 5] = float("nan")
    start[:3, 16] = float("nan")                          # the right wrist missing at the start
    fit = optimise_sequence(start, observed, confidence, cameras, H36M17.bones)
    assert fit.valid.all() and fit.filled.sum() == 6 + 4 + 3 and fit.filled[10:16, 13].all()
    assert torch.isfinite(fit.points_3d).all()
    assert (fit.points_3d[10:16, 13] - truth[10:16, 13]).norm(dim=-1).max() < 40.0
    assert (fit.points_3d[20:24, 5] - truth[20:24, 5]).norm(dim=-1).max() < 25.0


def test_sequences_are_separate_runs_with_their_own_bones(walk):
    truth, pixels, cameras = walk
    observed, confidence = noisy(pixels, seed=2)
    start = triangulate_cameras(cameras.expand(FRAMES, len(cameras)), observed, confidence).points_3d
    half = FRAMES // 2
    ids = torch.tensor([7] * half + [3] * half)
    frames = torch.cat([torch.arange(half) * 2, torch.arange(half)])      # the first run strided by 2
    fit = optimise_sequence(start, observed, confidence, cameras, H36M17.bones, sequence_ids=ids, frame_ids=frames)
    assert fit.bone_lengths.shape == (2, len(H36M17.bones)) and fit.sequence.tolist() == [0] * half + [1] * half
    alone = optimise_sequence(start[half:], observed[half:], confidence[half:], cameras, H36M17.bones)
    assert torch.allclose(fit.points_3d[half:], alone.points_3d, atol=0.5)     # runs do not talk to each other


def test_fill_gaps_interpolates_in_time_within_runs():
    points = torch.arange(8, dtype=torch.float64)[:, None, None].expand(8, 2, 3).clone()
    points[2:4, 0] = float("nan")                         # interior gap: interpolated
    points[0, 0] = float("nan")                           # start of a run: the nearest known frame
    points[5:, 1] = float("nan")                          # unknown in the whole second run
    points[5, 0] = float("nan")                           # start of the second run: not taken from the first
    run = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    frames = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2]) * 10
    filled = fill_gaps(points, run, frames)
    assert filled[2:4, 0, 0].tolist() == [2.0, 3.0] and filled[0, 0, 0] == 1.0 and filled[5, 0, 0] == 6.0
    assert torch.isnan(filled[5:, 1]).all() and torch.equal(filled[6:, 0], points[6:, 0])


def test_robust_losses_are_quadratic_near_zero_linear_far_and_finite():
    squared = torch.tensor([0.0, 1.0, 25.0, 1e4], dtype=torch.float64, requires_grad=True)
    for kind in ("huber", "soft_l1"):
        value = robust_loss(squared, 5.0, kind)
        value.sum().backward()
        assert torch.isfinite(squared.grad).all() and value[0] == 0
        assert abs(value[1].item() - 1.0) < 0.05 and value[3] < 2 * 5 * 100 + 1
        squared.grad = None
    with pytest.raises(ValueError, match="loss must be one of huber, soft_l1"):
        robust_loss(squared, 5.0, "l2")


def test_missing_and_bad_observations_stay_out(walk):
    truth, pixels, cameras = walk
    observed, confidence = noisy(pixels, seed=3, outliers=0.0)
    observed[5, 0] = float("nan")                         # a view without 2D
    confidence[6, 1] = float("nan")                       # a view without confidence
    observed[7, 2, 4] = float("inf")
    start = truth + 5.0
    start[8, 3] = torch.tensor([1e5, 1e5, -1e5], dtype=torch.float64)   # an absurd start behind cameras
    fit = optimise_sequence(start, observed, confidence, cameras.expand(FRAMES, len(cameras)), H36M17.bones, iterations=60)
    assert torch.isfinite(fit.points_3d).all() and torch.isfinite(fit.cost).all()
    assert (fit.points_3d - truth).norm(dim=-1).median() < 10.0


@pytest.mark.parametrize("change, message", [
    (dict(points_3d=torch.zeros(FRAMES, 17, 2)), "points_3d must have shape"),
    (dict(keypoints_2d=torch.zeros(FRAMES, 4, 16, 2)), "keypoints_2d must have shape"),
    (dict(confidence=torch.zeros(FRAMES, 3, 17)), "confidence must have shape"),
    (dict(bones=[(0, 17)]), "bones must be"),
    (dict(sequence_ids=torch.zeros(3)), "sequence_ids must be a tensor of shape"),
    (dict(frame_ids=torch.zeros(3)), "frame_ids must be a tensor of shape"),
    (dict(loss="l2"), "loss must be one of"),
    (dict(robust_px=0.0), "robust_px must be"),
    (dict(smooth_weight=-1.0), "smooth_weight must be"),
    (dict(iterations=0), "iterations must be a positive integer"),
])
def test_bad_arguments_are_named(walk, change, message):
    truth, pixels, cameras = walk
    args = dict(points_3d=truth, keypoints_2d=pixels, confidence=torch.ones(FRAMES, 4, 17), cameras=cameras,
                bones=H36M17.bones)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        optimise_sequence(**args)
    with pytest.raises(ValueError, match="cameras must be Cameras of batch shape"):
        optimise_sequence(truth, pixels, torch.ones(FRAMES, 4, 17), cameras[:2], H36M17.bones)
