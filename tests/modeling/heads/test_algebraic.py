import pytest
import torch
from torch import nn

from core.registry import HEADS
from datasets.synthetic.rigs import h36m_like_ring
from modeling.heads.algebraic import AlgebraicTriangulationHead
from modeling.heads.decoding import soft_argmax

HEATMAP_SIZE = 64
J = 17


def gaussian_heatmaps(centres: torch.Tensor, size: int, sigma: float = 2.0) -> torch.Tensor:
    """(..., J, 2) centres (x, y) -> (..., J, size, size) Gaussians of peak 1."""
    grid = torch.arange(size, dtype=centres.dtype)
    squared = (grid[None, :] - centres[..., 0, None, None]) ** 2 + (grid[:, None] - centres[..., 1, None, None]) ** 2
    return torch.exp(-squared / (2 * sigma ** 2))


class FixedConfidences(nn.Module):
    """Stands in for the confidence branch: returns the given (B * V, J) confidences."""

    def __init__(self, confidences: torch.Tensor):
        super().__init__()
        self.confidences = confidences

    def forward(self, features):
        return self.confidences


@pytest.fixture
def scene():
    """Cameras (2, 4) of a Human3.6M-like ring folded to 64 x 64 heatmaps, world points (2, J, 3) mm and
    their exact (distorted) heatmap pixels (2, 4, J, 2)."""
    generator = torch.Generator().manual_seed(3)
    cameras = h36m_like_ring(4)
    cameras = cameras.for_feature_map(1000.0 / HEATMAP_SIZE, (HEATMAP_SIZE, HEATMAP_SIZE)).unsqueeze(0).expand(2, 4)
    points = torch.rand(2, J, 3, generator=generator, dtype=torch.float64) * torch.tensor([600.0, 600.0, 1500.0]) \
        + torch.tensor([-300.0, -300.0, 200.0])
    pixels = cameras.project(points.unsqueeze(1))
    return cameras, points, pixels


def decoded(heatmaps):
    """The soft-argmax 2D (heatmap pixels) and peaks that the image pipeline gives the head (beta 20)."""
    return soft_argmax(heatmaps, 20.0)


def features(batch=2, views=4, channels=8, generator=None):
    return torch.randn(batch, views, channels, 8, 8, generator=generator)


def test_recovers_3d_from_exact_heatmaps(scene):
    cameras, points, pixels = scene
    assert ((pixels > 4) & (pixels < HEATMAP_SIZE - 5)).all()
    head = HEADS.get("algebraic")(num_joints=J, in_channels=8)
    assert isinstance(head, AlgebraicTriangulationHead)
    keypoints_2d, peaks = decoded(gaussian_heatmaps(pixels, HEATMAP_SIZE).float())
    out = head(keypoints_2d, peaks, cameras, features=features())
    assert out.points_3d.shape == (2, J, 3)
    assert out.confidence.shape == out.weights.shape == (2, 4, J) and out.valid.all()
    assert ((out.confidence > 0) & (out.confidence < 1)).all()
    # the weights are the confidences normalised over the views (+ 1e-5)
    torch.testing.assert_close(out.weights.sum(1), torch.full((2, J), 1 + 4e-5))
    assert (keypoints_2d.double() - pixels).abs().max() < 0.05  # heatmap pixels (~15.6 image px)
    errors = (out.points_3d - points).norm(dim=-1)
    assert errors.max() < 5.0 and errors.mean() < 3.0  # mm: the soft-argmax bias of ~0.03 heatmap px


def test_without_confidences_is_the_plain_dlt(scene):
    cameras, points, pixels = scene
    head = AlgebraicTriangulationHead(num_joints=J, in_channels=8, use_confidences=False)
    out = head(*decoded(gaussian_heatmaps(pixels, HEATMAP_SIZE)), cameras, features=None)
    assert (out.confidence == 1).all() and list(head.parameters()) == []
    assert (out.points_3d - points).norm(dim=-1).max() < 5.0


def test_gradient_reaches_the_confidence_branch_and_the_heatmaps(scene):
    cameras, points, pixels = scene
    generator = torch.Generator().manual_seed(1)
    noisy = pixels + 0.3 * torch.randn(pixels.shape, generator=generator, dtype=torch.float64)  # views disagree
    heatmaps = gaussian_heatmaps(noisy, HEATMAP_SIZE).float().requires_grad_(True)
    head = AlgebraicTriangulationHead(num_joints=J, in_channels=8)
    out = head(*decoded(heatmaps), cameras, features=features(generator=generator))
    loss = (out.points_3d - points).norm(dim=-1).mean()
    loss.backward()
    assert heatmaps.grad.isfinite().all() and heatmaps.grad.abs().sum() > 0
    for name, parameter in head.confidence_head.named_parameters():
        assert parameter.grad is not None and parameter.grad.isfinite().all(), name
    assert head.confidence_head.mlp[-2].weight.grad.abs().sum() > 0
    assert head.confidence_head.features[0].weight.grad.abs().sum() > 0


def test_views_below_the_threshold_are_dropped(scene):
    cameras, points, pixels = scene
    corrupted = pixels.clone()
    corrupted[:, 0, :5] = torch.tensor([10.0, 50.0], dtype=torch.float64)  # view 0 is wrong for joints 0-4 ...
    confidences = torch.full((2, 4, J), 0.9)
    confidences[:, 0, :5] = 0.2                                             # ... and says so
    confidences[:, 1:, 5] = 0.1                                             # joint 5: only view 0 is left
    head = AlgebraicTriangulationHead(num_joints=J, in_channels=8, min_confidence=0.5)
    head.confidence_head = FixedConfidences(confidences.flatten(0, 1))
    out = head(*decoded(gaussian_heatmaps(corrupted, HEATMAP_SIZE)), cameras, features=features())
    assert (out.weights[:, 0, :5] == 0).all() and (out.weights[:, 1:, 5] == 0).all()
    assert (out.num_views[:, :5] == 3).all() and (out.num_views[:, 5] == 1).all()
    assert out.valid[:, :5].all() and (out.points_3d[:, :5] - points[:, :5]).norm(dim=-1).max() < 5.0
    assert not out.valid[:, 5].any() and out.points_3d[:, 5].isnan().all()
    assert out.valid[:, 6:].all()

    no_threshold = AlgebraicTriangulationHead(num_joints=J, in_channels=8)
    no_threshold.confidence_head = FixedConfidences(confidences.flatten(0, 1))
    polluted = no_threshold(*decoded(gaussian_heatmaps(corrupted, HEATMAP_SIZE)), cameras, features=features())
    assert (polluted.points_3d[:, :5] - points[:, :5]).norm(dim=-1).min() > 5.0  # weighted, not dropped


def test_bad_inputs_raise(scene):
    cameras, _, pixels = scene
    head = AlgebraicTriangulationHead(num_joints=J, in_channels=8)
    keypoints_2d, peaks = decoded(gaussian_heatmaps(pixels, HEATMAP_SIZE))
    with pytest.raises(ValueError, match="keypoints_2d"):
        head(keypoints_2d[:, :, :3], peaks, cameras, features=features())
    with pytest.raises(ValueError, match="cameras"):
        head(keypoints_2d, peaks, cameras[:, :3], features=features())
    with pytest.raises(ValueError, match="features"):
        head(keypoints_2d, peaks, cameras, features=features(channels=5))
    with pytest.raises(ValueError, match="features"):
        head(keypoints_2d, peaks, cameras)
    with pytest.raises(ValueError, match="num_joints"):
        AlgebraicTriangulationHead(num_joints=0, in_channels=8)


def test_confidence_branch_pools_odd_maps_and_even_maps_as_the_reference():
    """Max pools round up: a 3 x 3 map (96 px crops) pools to one cell; an 8 x 8 map (256 px) pools as without
    rounding, so the reference's setting is unchanged."""
    from modeling.heads.algebraic import ConfidenceHead
    torch.manual_seed(0)
    head = ConfidenceHead(16, 17).eval()
    assert head(torch.randn(2, 16, 3, 3)).shape == (2, 17)
    even = torch.randn(2, 16, 8, 8)
    exact = nn.Sequential(*[nn.MaxPool2d(2) if isinstance(m, nn.MaxPool2d) else m for m in head.features])
    torch.testing.assert_close(head(even), head.mlp(exact(even).mean(dim=(-2, -1))))
