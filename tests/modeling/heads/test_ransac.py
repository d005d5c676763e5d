import cv2
import numpy as np
import pytest
import torch

from core.geometry.triangulation import reprojection_errors, triangulate_cameras
from core.registry import HEADS
from datasets.synthetic.rigs import h36m_like_ring
from modeling.heads.dlt import DLTHead
from modeling.heads.ransac import RansacHead
from modeling.heads.result import HeadResult

J = 17


def make_scene(num_views=4, batch=2, seed=0):
    """Cameras (batch, V), world points (batch, J, 3) mm, their exact distorted pixels (batch, V, J, 2)."""
    generator = torch.Generator().manual_seed(seed)
    cameras = h36m_like_ring(num_views).unsqueeze(0).expand(batch, num_views)
    points = torch.rand(batch, J, 3, generator=generator, dtype=torch.float64) \
        * torch.tensor([800.0, 800.0, 1600.0]) + torch.tensor([-400.0, -400.0, 100.0])
    return cameras, points, cameras.project(points.unsqueeze(1)), generator


def test_rejects_a_gross_outlier_where_the_dlt_fails():
    cameras, points, pixels, generator = make_scene()
    corrupted = pixels.clone()
    corrupted[0, 2] += 150.0                 # sample 0: view 2 wrong for every joint
    corrupted[1, 0, ::2] -= torch.tensor([90.0, -120.0], dtype=torch.float64)  # sample 1: view 0, every other joint
    confidence = torch.ones(2, 4, J)
    head = HEADS.get("ransac")(inlier_threshold_px=15.0)
    result = head(corrupted, confidence, cameras)
    assert isinstance(result, HeadResult) and result.valid.all()
    assert (result.points_3d - points).norm(dim=-1).max() < 1e-6
    assert not result.used[0, 2].any() and result.used[0, [0, 1, 3]].all()
    assert not result.used[1, 0, ::2].any() and result.used[1, 0, 1::2].all()
    assert (result.num_views == result.used.sum(1)).all()
    dlt = DLTHead()(corrupted, confidence, cameras)
    assert (dlt.points_3d[0] - points[0]).norm(dim=-1).min() > 50.0


def test_matches_the_dlt_without_outliers():
    cameras, points, pixels, generator = make_scene(num_views=5)
    noisy = pixels + 1.5 * torch.randn(pixels.shape, generator=generator, dtype=torch.float64)
    confidence = 0.5 + 0.5 * torch.rand(2, 5, J, generator=generator)
    for weighted in (False, True):
        result = RansacHead(inlier_threshold_px=15.0, confidence_weighted=weighted)(noisy, confidence, cameras)
        dlt = DLTHead(confidence_weighted=weighted)(noisy, confidence, cameras)
        assert result.used.all() and (result.num_views == 5).all()
        torch.testing.assert_close(result.points_3d, dlt.points_3d, rtol=0, atol=1e-9)


def test_agrees_with_core_geometry_and_opencv_on_the_inlier_set():
    cameras, points, pixels, generator = make_scene(num_views=3, batch=1)
    noisy = pixels + 0.8 * torch.randn(pixels.shape, generator=generator, dtype=torch.float64)
    noisy[:, 1] += 200.0                     # view 1 is an outlier: the inlier set is views 0 and 2
    result = RansacHead(inlier_threshold_px=10.0)(noisy, torch.ones(1, 3, J), cameras)
    assert result.used[:, [0, 2]].all() and not result.used[:, 1].any()
    inlier_weights = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)[None, :, None].expand(1, 3, J)
    expected = triangulate_cameras(cameras, noisy, inlier_weights)
    torch.testing.assert_close(result.points_3d, expected.points_3d, rtol=0, atol=1e-9)
    # the DLT of the two inlier cameras alone differs only by its conditioning (second order in the noise)
    subset = triangulate_cameras(cameras[:, [0, 2]], noisy[:, [0, 2]])
    torch.testing.assert_close(result.points_3d, subset.points_3d, rtol=0, atol=0.05)

    exact = pixels.clone()
    exact[:, 1] += 200.0
    result = RansacHead(inlier_threshold_px=10.0)(exact, torch.ones(1, 3, J), cameras)
    undistorted = cameras.undistort_pixels(exact)[0].numpy()
    P = cameras.projection_matrices[0].numpy()
    homogeneous = cv2.triangulatePoints(P[0], P[2], undistorted[0].T, undistorted[2].T)
    np.testing.assert_allclose(result.points_3d[0].numpy(), (homogeneous[:3] / homogeneous[3]).T, rtol=1e-6, atol=1e-6)


def test_ties_in_the_inlier_count_go_to_the_lowest_error():
    """View 0 sees another point: hypotheses (0, 2) and (1, 2) are nearly consistent pairs (two inliers,
    some error), (1, 2) is exact (two inliers, no error); the tie must go to (1, 2), not to the first pair."""
    cameras, points, pixels, _ = make_scene(num_views=3, batch=1)
    threshold = 20.0
    keypoints = pixels.clone()
    elsewhere = points + torch.tensor([150.0, 0.0, 0.0], dtype=torch.float64)
    keypoints[:, 0] = cameras[:, 0].project(elsewhere)
    mixed = triangulate_cameras(cameras[:, [0, 2]], keypoints[:, [0, 2]]).points_3d
    mixed_errors = reprojection_errors(mixed, cameras, keypoints)                        # (1, 3, J)
    tied = (mixed_errors[:, [0, 2]] < threshold).all(1) & (mixed_errors[:, 1] >= threshold)
    assert tied.sum() >= J // 2 and (mixed_errors[:, [0, 2]].sum(1) > 1e-3).all()
    result = RansacHead(inlier_threshold_px=threshold)(keypoints, torch.ones(1, 3, J), cameras)
    assert result.used[:, 1:][tied.unsqueeze(1).expand(1, 2, J)].all() and not result.used[:, 0][tied].any()
    assert (result.points_3d[tied] - points[tied]).norm(dim=-1).max() < 1e-6


def test_too_few_views_give_nan_never_a_crash():
    cameras, points, pixels, generator = make_scene(num_views=4)
    keypoints = pixels.clone()
    confidence = torch.ones(2, 4, J)
    keypoints[0, 1:, 0] = float("nan")       # joint 0 of sample 0: one finite view
    confidence[1, :3, 1] = 0.1               # joint 1 of sample 1: one view above the threshold
    confidence[1, :2, 2] = 0.1               # joint 2 of sample 1: two views left, still fine
    result = RansacHead(min_confidence=0.5)(keypoints, confidence, cameras)
    assert not result.valid[0, 0] and result.points_3d[0, 0].isnan().all() and not result.used[0, :, 0].any()
    assert not result.valid[1, 1] and result.points_3d[1, 1].isnan().all()
    assert result.valid[1, 2] and result.num_views[1, 2] == 2 and (result.points_3d[1, 2] - points[1, 2]).norm() < 1e-6
    assert result.valid.sum() == 2 * J - 2

    single = RansacHead()(pixels[:, :1], torch.ones(2, 1, J), cameras[:, :1])
    assert not single.valid.any() and single.points_3d.isnan().all() and single.num_views.eq(0).all()

    disagreeing = pixels[:, :2].clone()
    disagreeing[:, 1] += 100.0               # two views that no point explains within the threshold
    result = RansacHead(inlier_threshold_px=5.0)(disagreeing, torch.ones(2, 2, J), cameras[:, :2])
    assert not result.valid.any() and result.points_3d.isnan().all()


def test_bad_shapes_raise():
    cameras, _, pixels, _ = make_scene()
    head = RansacHead()
    with pytest.raises(ValueError, match="confidence"):
        head(pixels, torch.ones(2, 3, J), cameras)
    with pytest.raises(ValueError, match="keypoints_2d"):
        head(pixels[..., :1], torch.ones(2, 4, J), cameras)
    with pytest.raises(ValueError, match="inlier_threshold_px"):
        RansacHead(inlier_threshold_px=0.0)
