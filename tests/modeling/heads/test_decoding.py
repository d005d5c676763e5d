import pytest
import torch

from core.geometry.cameras import Cameras
from modeling.heads.decoding import (argmax_decode, centre_of_mass_decode, heatmap_to_image, image_to_heatmap,
                                     soft_argmax)


def gaussian_heatmaps(centres: torch.Tensor, height: int, width: int, sigma: float = 2.0) -> torch.Tensor:
    """(..., J, 2) sub-pixel centres (x, y) -> (..., J, height, width) Gaussians of peak 1."""
    ys = torch.arange(height, dtype=centres.dtype)[:, None]
    xs = torch.arange(width, dtype=centres.dtype)[None, :]
    squared = (xs - centres[..., 0, None, None]) ** 2 + (ys - centres[..., 1, None, None]) ** 2
    return torch.exp(-squared / (2 * sigma ** 2))


@pytest.fixture
def centres():
    generator = torch.Generator().manual_seed(0)
    # (2, 3, 17, 2): away from the border, sub-pixel positions everywhere in the pixel
    return torch.rand(2, 3, 17, 2, generator=generator, dtype=torch.float64) * torch.tensor([32.0, 24.0]) + 4.0


def test_argmax_recovers_gaussian_peaks(centres):
    heatmaps = gaussian_heatmaps(centres, 32, 40)
    raw, confidence = argmax_decode(heatmaps, refinement="none")
    assert raw.shape == centres.shape and confidence.shape == centres.shape[:-1]
    assert torch.equal(raw, centres.round())
    assert (confidence > 0.9).all() and (confidence <= 1).all()
    quarter, _ = argmax_decode(heatmaps)  # default: the quarter-pixel shift
    assert (quarter - centres).abs().max() <= 0.25 + 1e-9
    assert (quarter - centres).abs().mean() < (raw - centres).abs().mean()
    assert torch.equal((quarter - raw).abs().unique(), torch.tensor([0.25], dtype=torch.float64))
    taylor, _ = argmax_decode(heatmaps, refinement="taylor")  # exact for Gaussians (log is quadratic)
    torch.testing.assert_close(taylor, centres, atol=1e-9, rtol=0)
    taylor32, _ = argmax_decode(heatmaps.float(), refinement="taylor")
    torch.testing.assert_close(taylor32, centres.float(), atol=1e-3, rtol=0)


def test_argmax_at_the_border_is_not_shifted_outside():
    heatmaps = torch.zeros(1, 5, 6, dtype=torch.float64)
    heatmaps[0, 0, 5], heatmaps[0, 0, 4], heatmaps[0, 1, 5] = 1.0, 0.5, 0.7  # corner peak, neighbours inside
    for refinement in ("quarter", "taylor"):
        coords, confidence = argmax_decode(heatmaps, refinement)
        assert coords.tolist() == [[5.0, 0.0]] and confidence.tolist() == [1.0]


def test_taylor_falls_back_where_the_peak_is_not_concave():
    heatmaps = torch.zeros(1, 7, 7)
    heatmaps[0, 3, 3] = 1.0  # an isolated spike: the log-heatmap is not a smooth maximum, no step
    heatmaps[0, 3, 4] = 1.0 - 1e-6
    coords, _ = argmax_decode(heatmaps, "taylor")
    assert coords.isfinite().all() and (coords - torch.tensor([[3.0, 3.0]])).abs().max() <= 1.0


def test_centre_of_mass_recovers_gaussian_peaks():
    generator = torch.Generator().manual_seed(1)
    centres = torch.rand(3, 17, 2, generator=generator, dtype=torch.float64) * 40.0 + 12.0  # 8 px from the border
    coords, confidence = centre_of_mass_decode(gaussian_heatmaps(centres, 64, 64), radius=8)
    # the window ends 7.5 px (3.75 sigma) from the centre at worst: its cut tails bias it by < 1e-3 px
    torch.testing.assert_close(coords, centres, atol=1e-3, rtol=0)
    assert (confidence > 0.9).all()


def _reference_centre_of_mass(heatmap: torch.Tensor, radius: int):
    """Epipolar Transformers' find_tensor_peak_batch for one (h, w) map, written as a plain loop."""
    height, width = heatmap.shape
    index = int(heatmap.flatten().argmax())
    px, py = index % width, index // width
    total = sx = sy = 0.0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            x, y = px + dx, py + dy
            value = float(heatmap[y, x]) if 0 <= x < width and 0 <= y < height else 0.0
            value = value if value > 1e-6 else 0.0
            total, sx, sy = total + value, sx + value * dx, sy + value * dy
    total += torch.finfo(torch.float64).eps
    return [px + sx / total, py + sy / total], float(heatmap.max())


def test_centre_of_mass_matches_the_reference_at_borders_and_on_negative_values():
    generator = torch.Generator().manual_seed(2)
    heatmaps = torch.randn(6, 20, 24, generator=generator, dtype=torch.float64) * 0.1
    heatmaps[0, 0, 0] = heatmaps[1, 19, 23] = heatmaps[2, 10, 0] = 2.0     # peaks in corners and on an edge
    coords, confidence = centre_of_mass_decode(heatmaps, radius=3)
    for j in range(len(heatmaps)):
        expected, peak = _reference_centre_of_mass(heatmaps[j], 3)
        torch.testing.assert_close(coords[j], torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)
        assert confidence[j] == peak
    lonely = torch.full((1, 5, 5), -1.0)
    lonely[0, 2, 3] = 1e-7                                                  # no mass above the threshold
    assert centre_of_mass_decode(lonely, radius=2)[0].tolist() == [[3.0, 2.0]]
    with pytest.raises(ValueError, match="radius"):
        centre_of_mass_decode(heatmaps, radius=2.5)


def test_non_finite_heatmap_decodes_to_nan():
    heatmaps = gaussian_heatmaps(torch.tensor([[5.3, 6.1], [8.0, 2.5]]), 12, 12)
    heatmaps[1, 3, 3] = float("nan")
    for coords, confidence in (argmax_decode(heatmaps), soft_argmax(heatmaps, 20.0), centre_of_mass_decode(heatmaps)):
        assert coords[0].isfinite().all() and coords[1].isnan().all() and confidence[1].isnan()


def test_soft_argmax_is_close_and_differentiable(centres):
    heatmaps = gaussian_heatmaps(centres, 32, 40)
    coords, confidence = soft_argmax(heatmaps, beta=20.0)
    assert coords.shape == centres.shape
    assert (coords - centres).abs().max() < 0.05
    torch.testing.assert_close(confidence, heatmaps.flatten(-2).amax(-1))
    # a large beta approaches the unrefined argmax (a blend of the two best pixels at half-pixel offsets)
    sharp, _ = soft_argmax(heatmaps, beta=1000.0)
    assert (sharp - centres).abs().max() <= 0.5 and (sharp - centres.round()).abs().median() < 1e-3

    heatmaps = heatmaps.clone().requires_grad_(True)
    target = centres + 0.3
    loss = (soft_argmax(heatmaps, 20.0)[0] - target).square().sum()
    loss.backward()
    assert heatmaps.grad.isfinite().all() and heatmaps.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda h: soft_argmax(h, 5.0)[0], (torch.rand(2, 4, 5, dtype=torch.float64,
                                                                             requires_grad=True),))


def test_soft_argmax_of_a_uniform_heatmap_is_the_centre():
    coords, _ = soft_argmax(torch.zeros(3, 8, 10))
    torch.testing.assert_close(coords, torch.tensor([[4.5, 3.5]]).expand(3, 2))


def test_stride_conversion_pixel_centres():
    heat = torch.tensor([[0.0, 0.0], [63.0, 47.0], [-0.5, -0.5]], dtype=torch.float64)
    image = heatmap_to_image(heat, 4)
    # heatmap pixel 0 covers image pixels 0..3 (centre 1.5); the heatmap's edge -0.5 is the image's edge
    assert image.tolist() == [[1.5, 1.5], [253.5, 189.5], [-0.5, -0.5]]
    torch.testing.assert_close(image_to_heatmap(image, 4), heat)
    anisotropic = heatmap_to_image(heat, (4.0, 2.0))
    assert anisotropic[1].tolist() == [253.5, 94.5]
    torch.testing.assert_close(image_to_heatmap(anisotropic, torch.tensor([4.0, 2.0])), heat)
    # the same mapping as the cameras of a feature map (Cameras.for_feature_map)
    cameras = Cameras.create(torch.eye(3), torch.eye(3), torch.zeros(3), image_size=(256, 192))
    points = torch.cat([image, torch.ones(3, 1, dtype=torch.float64)], -1).unsqueeze(0) * 1000.0
    torch.testing.assert_close(cameras.for_feature_map(4, (64, 48)).project(points)[0], heat)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="heatmaps"):
        argmax_decode(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="refinement"):
        argmax_decode(torch.zeros(1, 4, 4), refinement="dark")
    with pytest.raises(ValueError, match="beta"):
        soft_argmax(torch.zeros(1, 4, 4), beta=0.0)
    with pytest.raises(ValueError, match="stride"):
        heatmap_to_image(torch.zeros(3, 2), -4)
    with pytest.raises(ValueError, match="coords_heatmap"):
        heatmap_to_image(torch.zeros(3, 3), 4)
