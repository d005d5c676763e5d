"""The fused (compiled) geometry kernels give the eager functions' results; a compiler failure falls back."""
import logging

import pytest
import torch

from core.geometry import fused, projection, triangulate_cameras, triangulate_dlt, undistort
from modeling.heads.ransac import RansacHead


def test_a_failing_compiler_falls_back_to_the_eager_function_with_one_warning(monkeypatch, epipose_log):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(fused, "_compiled", {})
    with fused.fused_mode("always"):
        assert fused.run(torch.add, 1, torch.ones(2), torch.ones(2)).tolist() == [2.0, 2.0]
        assert not fused.wants_fused(10 ** 9)  # off for the rest of the process (here: of the block)
    warned = {r.getMessage() for r in epipose_log.records
              if r.levelno == logging.WARNING and "compiling" in r.getMessage()}
    assert len(warned) == 1 and "no C++ compiler" in warned.pop()
    with pytest.raises(ValueError, match="mode must be one of auto, off, always"):
        with fused.fused_mode("fast"):
            pass


def _both(call):
    with fused.fused_mode("off"):
        eager = call()
    with fused.fused_mode("always"):
        compiled = call()
        assert fused.wants_fused(0), "the kernel did not compile (see the warning)"
    return eager, compiled


@pytest.mark.slow
def test_the_fused_dlt_is_the_eager_one(generator, make_rig, make_points):
    cams = make_rig(generator, batch_shape=(3,), num_views=4)
    points = make_points(generator, 3, 200)
    x = cams.pinhole().project(points.unsqueeze(-3)) + 3 * torch.randn(3, 4, 200, 2, generator=generator,
                                                                          dtype=torch.float64)
    x[0, 1, :50] = float("nan")                    # missing views
    x[1, :3, 100:110] = float("nan")               # too few views
    x[2, :, 150:160] = x[2, :, 150:151]            # outliers and near-degenerate systems
    weights = torch.rand(3, 4, 200, generator=generator, dtype=torch.float64)
    weights[2, 0, :20] = 0.0
    P = cams.projection_matrices
    for w in (None, weights):
        eager, compiled = _both(lambda: triangulate_dlt(x, P, w))
        assert torch.equal(eager.valid, compiled.valid) and torch.equal(eager.num_views, compiled.num_views)
        assert torch.allclose(eager.points_3d, compiled.points_3d, atol=1e-9, equal_nan=True)
        assert eager.valid.float().mean() > 0.8


@pytest.mark.slow
def test_the_fused_undistortion_is_the_eager_one(generator):
    dist = torch.tensor([[-0.45, 0.25, 1e-3, -2e-3, 0.05], [-0.1, 0.01, 0.0, 0.0, 0.0]], dtype=torch.float64)
    xd = (torch.rand(2, 5000, 2, generator=generator, dtype=torch.float64) - 0.5) * 1.6  # some beyond the fold
    xd[0, :10] = float("nan")
    eager, compiled = _both(lambda: undistort(xd, dist))
    assert torch.equal(torch.isnan(eager), torch.isnan(compiled)) and torch.isnan(eager[0]).any()
    assert torch.allclose(eager, compiled, atol=1e-13, equal_nan=True)
    assert (~torch.isnan(eager[1])).all()


@pytest.mark.slow
def test_the_fused_ransac_is_the_eager_one(generator, make_rig, make_points):
    cams = make_rig(generator, batch_shape=(8,), num_views=5)
    points = make_points(generator, 8, 17)
    keypoints = cams.project(points.unsqueeze(-3)) + torch.randn(8, 5, 17, 2, generator=generator,
                                                                 dtype=torch.float64)
    keypoints[:, 0, :6] += 80.0                     # gross outliers in one view
    confidence = torch.rand(8, 5, 17, generator=generator, dtype=torch.float64)
    head = RansacHead(inlier_threshold_px=10.0)
    eager, compiled = _both(lambda: head(keypoints, confidence, cams))
    assert torch.equal(eager.weights > 0, compiled.weights > 0) and torch.equal(eager.valid, compiled.valid)
    assert torch.allclose(eager.points_3d, compiled.points_3d, atol=1e-9, equal_nan=True)


@pytest.mark.slow
def test_the_fused_undistortion_of_pixels_is_the_eager_one_and_finishes_the_slow_points(generator, make_rig,
                                                                                          make_points):
    """Cameras with a batch axis (the views unrolled, the batch broadcast), strong lenses whose outer points need
    more than the fused Newton steps (finished eagerly), missing points, and pixels beyond the fold (NaN)."""
    cams = make_rig(generator, batch_shape=(2,), num_views=3, distortion=2.5)
    pixels = cams.project(make_points(generator, 2, 1, 3000).expand(2, 3, 3000, 3))
    pixels[0, 1, :20] = float("nan")
    pixels[1, 2, :10] = pixels[1, 2, :10] * 4 - 1500  # far outside the image: beyond the fold of some lenses
    K_inverse = torch.linalg.inv(cams.K[..., :2, :2])
    lagging = [projection._undistort_view(pixels[:, view, :, 0], pixels[:, view, :, 1], cams.dist[:, view, None],
                                          cams.K[:, view, None], K_inverse[:, view, None])[2] for view in range(3)]
    assert torch.stack(lagging).any(), "no point needed more than the fused steps: the test lost its point"
    eager, compiled = _both(lambda: cams.undistort_pixels(pixels))
    assert torch.equal(torch.isnan(eager), torch.isnan(compiled)) and torch.isnan(eager[0, 1, :20]).all()
    assert torch.allclose(eager, compiled, atol=1e-9, equal_nan=True)


@pytest.mark.slow
def test_the_fused_dlt_of_distorted_pixels_is_the_eager_one(generator, make_rig, make_points):
    """``triangulate_cameras`` on one rig (no batch axis: the views' cameras broadcast over every point), weighted
    and not, with missing views."""
    cams = make_rig(generator, num_views=4)
    truth = make_points(generator, 4000)
    keypoints = cams.project(truth.unsqueeze(0)) + torch.randn(4, 4000, 2, generator=generator, dtype=torch.float64)
    keypoints[2, :300] = float("nan")
    weights = torch.rand(4, 4000, generator=generator, dtype=torch.float64)
    for w in (None, weights):
        eager, compiled = _both(lambda: triangulate_cameras(cams, keypoints, w))
        assert torch.equal(eager.valid, compiled.valid) and torch.equal(eager.num_views, compiled.num_views)
        assert torch.allclose(eager.points_3d, compiled.points_3d, atol=1e-9, equal_nan=True)
        assert (compiled.points_3d - truth).norm(dim=-1).nanmedian() < 5.0

