import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.geometry.cameras import Cameras
from core.geometry.projection import camera_to_world, pixels_to_normalized
from core.registry import FUSIONS
from datasets.synthetic.rigs import random_rig
from modeling.fusion import EpipolarTransformer
from modeling.fusion.epipolar import _clip_lines, pixel_grid, select_sources

SIZE = 16
CHANNELS = 8


def make_cameras(num_views=4, seed=3, distortion=True, batch=1):
    """A random rig shrunk to SIZE x SIZE feature maps (a stride folded into K), batch shape (batch, V)."""
    cameras = random_rig(num_views, seed).for_feature_map(1000 / SIZE, (SIZE, SIZE))
    if not distortion:
        cameras = Cameras(cameras.K, cameras.R, cameras.t, torch.zeros_like(cameras.dist), cameras.image_size)
    return cameras.unsqueeze(0).expand(batch, num_views)


def correspondences(cameras, view=0):
    """World points (hw, 3) seen at the pixel centres of ``view`` and their distorted pixels (V, hw, 2)."""
    camera = cameras[0, view]
    undistorted = camera.undistort_pixels(pixel_grid(SIZE, SIZE, cameras.dtype, cameras.device))
    rays = torch.cat([pixels_to_normalized(undistorted, camera.K), torch.ones(SIZE * SIZE, 1, dtype=cameras.dtype)], -1)
    depth = (camera.centers - camera.centers.new_tensor([0.0, 0.0, 1000.0])).norm()
    points = camera_to_world(rays * depth, camera.R, camera.t)
    return points, cameras[0].project(points)


def _merged_features(features, cameras, **options):
    """features + the layer's merged (attended, aggregated) source features: a gated layer whose z is the
    identity and whose batch norm passes its input through."""
    layer = EpipolarTransformer(CHANNELS, samples=8, residual="gated", **options).double().eval()
    with torch.no_grad():
        layer.conv.weight.copy_(torch.eye(CHANNELS, dtype=torch.float64)[:, :, None, None])
        layer.conv.bias.zero_()
        layer.bn.weight.fill_(1.0)
        layer.bn.eps = 0.0
        return layer(features, cameras)


def test_registered_and_residuals_at_initialisation():
    """gated returns the features exactly; the reference's z-residual features + merged."""
    assert FUSIONS.get("epipolar") is EpipolarTransformer
    torch.manual_seed(0)
    features = torch.randn(2, 4, CHANNELS, SIZE, SIZE, dtype=torch.float64)
    cameras = make_cameras(batch=2)
    for sources in ("nearest", "knn", "all"):
        for aggregation in ("mean", "learned"):
            options = dict(sources=sources, aggregation=aggregation)
            gated = EpipolarTransformer(CHANNELS, samples=8, residual="gated", **options).double()
            assert torch.equal(gated(features, cameras), features)
            gated.eval()
            assert torch.equal(gated(features, cameras), features)
            reference = EpipolarTransformer(CHANNELS, samples=8, **options).double().eval()
            assert reference.residual == "reference"
            expected = _merged_features(features, cameras, **options)
            assert (expected - features).abs().amax() > 0.1
            torch.testing.assert_close(reference(features, cameras), expected, atol=1e-12, rtol=0)


def test_gradients_reach_parameters_and_features():
    torch.manual_seed(0)
    features = torch.randn(1, 4, CHANNELS, SIZE, SIZE, requires_grad=True)
    layer = EpipolarTransformer(CHANNELS, samples=16, sources="all", aggregation="learned")
    target = torch.randn_like(features)
    ((layer(features, make_cameras()) - target) ** 2).sum().backward()
    assert layer.bn.weight.grad.abs().sum() > 0          # gamma learns from the start
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0

    with torch.no_grad():
        layer.bn.weight.fill_(1.0)
        layer.source_score.weight.normal_()
    features.grad = None
    layer.zero_grad()
    output = layer(features, make_cameras())
    output[:, 0].sum().backward()   # only view 0's output: the other views get gradient through the attention
    assert layer.conv.weight.grad.abs().sum() > 0
    assert layer.source_score.weight.grad.abs().sum() > 0
    assert features.grad[:, 1:].abs().sum() > 0


@pytest.mark.parametrize("distortion", [False, True])
def test_samples_lie_on_the_epipolar_curve(distortion):
    cameras = make_cameras(distortion=distortion)
    if distortion:
        assert cameras.dist.abs().max() > 0.01
    layer = EpipolarTransformer(CHANNELS, samples=64, sources="all")
    result = layer(torch.randn(1, 4, CHANNELS, SIZE, SIZE), cameras, return_attention=True)
    _, projections = correspondences(cameras, view=0)
    checked = 0
    for slot, source in enumerate(result["sources"][0, 0].tolist()):
        target = projections[source]                                                   # (hw, 2)
        seen = ((target >= 0.5) & (target <= SIZE - 1.5)).all(-1)
        pixels = result["sample_pixels"][0, 0, slot].reshape(SIZE * SIZE, -1, 2)       # (hw, K, 2)
        mask = result["sample_mask"][0, 0, slot].reshape(SIZE * SIZE, -1)
        assert mask[seen].any(-1).all()
        # distance of the true correspondence to the polyline through consecutive valid samples
        start, end = pixels[:, :-1], pixels[:, 1:]
        both = mask[:, :-1] & mask[:, 1:]
        segment = end - start
        fraction = (((target[:, None] - start) * segment).sum(-1) / segment.square().sum(-1).clamp_min(1e-12)).clamp(0, 1)
        distance = (start + fraction[..., None] * segment - target[:, None]).norm(dim=-1)
        distance = torch.where(both, distance, torch.full_like(distance, float("inf"))).amin(-1)
        spacing = torch.where(both, segment.norm(dim=-1), torch.zeros_like(distance[:, None])).amax(-1)
        nearest_sample = torch.where(mask, (pixels - target[:, None]).norm(dim=-1),
                                     torch.full_like(mask, float("inf"), dtype=pixels.dtype)).amin(-1)
        assert (distance[seen] < 0.02).all(), distance[seen].max()
        assert (nearest_sample[seen] <= 0.5 * spacing[seen] + 0.02).all()
        checked += int(seen.sum())
    assert checked > 100


def test_clip_lines_to_a_square():
    square = torch.tensor([[0.0, 0.0], [15.0, 0.0], [15.0, 15.0], [0.0, 15.0]], dtype=torch.float64)
    lines = torch.tensor([[1.0, 0.0, -5.0], [0.0, 1.0, -15.0], [1.0, 0.0, -20.0],
                          [float("nan")] * 3], dtype=torch.float64)
    foot, direction, first, last, hits = _clip_lines(lines, square)
    assert hits.tolist() == [True, True, False, False]
    ends = torch.stack([foot + first[:, None] * direction, foot + last[:, None] * direction], 1)[:2]
    expected = {(5.0, 0.0), (5.0, 15.0)}, {(0.0, 15.0), (15.0, 15.0)}
    for got, want in zip(ends, expected):
        assert {tuple(round(v, 9) + 0.0 for v in p) for p in got.tolist()} == want


def test_masking_of_out_of_map_samples_and_no_nan_when_lines_miss():
    cameras = make_cameras(num_views=2)
    K = cameras.K.clone()
    K[0, 1, 0, 2] += 3 * SIZE   # view 1 now sees far to the side: most lines from view 0 miss its map
    K[0, 1, 1, 2] += 0.3 * SIZE
    cameras = Cameras(K, cameras.R, cameras.t, cameras.dist, cameras.image_size)
    torch.manual_seed(0)
    features = (10 * torch.randn(1, 2, CHANNELS, SIZE, SIZE)).requires_grad_()
    layer = EpipolarTransformer(CHANNELS, samples=32, sources="all")
    with torch.no_grad():
        layer.bn.weight.fill_(1.0)
        layer.conv.bias.zero_()
    layer.eval()
    result = layer(features, cameras, return_attention=True)
    mask, attention, pixels = result["sample_mask"], result["attention"], result["sample_pixels"]
    usable = mask.any(-1)
    assert (~usable).any() and usable.any() and (~mask & usable.unsqueeze(-1)).any()
    assert (attention[~mask] == 0).all()
    sums = attention.sum(-1)
    assert torch.allclose(sums[usable], torch.ones_like(sums[usable]))
    assert (sums[~usable] == 0).all()
    inside = pixels[mask]
    assert (inside >= -1e-3).all() and (inside <= SIZE - 1 + 1e-3).all()

    output = result["features"]
    assert torch.isfinite(output).all()
    no_source = ~usable.any(2)                                      # (B, V, h, w)
    assert no_source.any()
    change = (output - features).abs().amax(2)
    assert (change[no_source] == 0).all() and (change[~no_source] > 0).any()
    output.square().sum().backward()
    assert torch.isfinite(features.grad).all()


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_attention_matches_a_direct_computation(similarity):
    torch.manual_seed(1)
    cameras = make_cameras(distortion=True)
    features = torch.randn(1, 4, CHANNELS, SIZE, SIZE)
    layer = EpipolarTransformer(CHANNELS, samples=16, similarity=similarity, softmax_scale=0.7)
    result = layer(features, cameras, return_attention=True)
    source = int(result["sources"][0, 1, 0])
    row, col = 5, 9
    mask = result["sample_mask"][0, 1, 0, row, col]
    pixels = result["sample_pixels"][0, 1, 0, row, col][mask]
    grid = (pixels * 2 / (SIZE - 1) - 1).float().view(1, 1, -1, 2)
    sampled = F.grid_sample(features[0, source][None], grid, align_corners=True)[0, :, 0].T   # (K', C)
    query = features[0, 1, :, row, col]
    if similarity == "dot":
        score = sampled @ query
    else:
        score = F.cosine_similarity(sampled, query[None], dim=-1)
    expected = torch.softmax(0.7 * score, 0)
    assert torch.allclose(result["attention"][0, 1, 0, row, col][mask], expected, atol=1e-5)



@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_fused_features_match_grid_sample_of_the_samples(similarity):
    """The dense-product formulation equals sampling every point with grid_sample and summing."""
    torch.manual_seed(4)
    cameras = make_cameras(distortion=True)
    features = torch.randn(1, 4, CHANNELS, SIZE, SIZE, dtype=torch.float64, requires_grad=True)
    layer = EpipolarTransformer(CHANNELS, samples=16, similarity=similarity, residual="gated").double().eval()
    with torch.no_grad():   # conv = identity, batch norm = identity: the output minus the input is the fused map
        layer.conv.weight.copy_(torch.eye(CHANNELS, dtype=torch.float64)[:, :, None, None])
        layer.conv.bias.zero_()
        layer.bn.weight.fill_(1.0)
        layer.bn.eps = 0.0
    result = layer(features, cameras, return_attention=True)
    fused = result["features"] - features                                        # (1, V, C, h, w)
    for view in range(4):
        source = int(result["sources"][0, view, 0])
        grid = (result["sample_pixels"][0, view, 0] * 2 / (SIZE - 1) - 1).reshape(1, SIZE * SIZE, -1, 2)
        sampled = F.grid_sample(features[0, source][None], grid, align_corners=True)[0]   # (C, hw, K)
        attention = result["attention"][0, view, 0].reshape(SIZE * SIZE, -1)
        expected = torch.einsum("cqk,qk->cq", sampled, attention).reshape(CHANNELS, SIZE, SIZE)
        assert torch.allclose(fused[0, view], expected, atol=1e-10)
    fused.square().sum().backward()
    assert torch.isfinite(features.grad).all()

@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_query_and_key_projections(similarity):
    """They start as the identity (the layer's output unchanged); trained, the similarity is that of the projected
    query and samples while the attended values stay the source's own features; gradients reach both."""
    torch.manual_seed(5)
    cameras = make_cameras(distortion=True)
    features = torch.randn(1, 4, CHANNELS, SIZE, SIZE, dtype=torch.float64)
    plain = EpipolarTransformer(CHANNELS, samples=16, similarity=similarity, sources="all").double().eval()
    projected = EpipolarTransformer(CHANNELS, samples=16, similarity=similarity, sources="all",
                                    projections=True).double().eval()
    projected.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(projected(features, cameras), plain(features, cameras), atol=1e-12, rtol=0)

    with torch.no_grad():
        for conv in (projected.query_projection, projected.key_projection):
            conv.weight.normal_()
            conv.bias.normal_()
    result = projected(features, cameras, return_attention=True)
    view, row, col = 2, 7, 4
    source = int(result["sources"][0, view, 1])
    mask = result["sample_mask"][0, view, 1, row, col]
    grid = (result["sample_pixels"][0, view, 1, row, col][mask] * 2 / (SIZE - 1) - 1).view(1, 1, -1, 2)
    keys = projected.key_projection(features[0, source][None])
    sampled_keys = F.grid_sample(keys, grid, align_corners=True)[0, :, 0].T                 # (K', C)
    query = projected.query_projection(features[0, view][None])[0, :, row, col]
    score = sampled_keys @ query if similarity == "dot" else F.cosine_similarity(sampled_keys, query[None], dim=-1)
    expected = torch.softmax(projected.softmax_scale * score, 0)
    torch.testing.assert_close(result["attention"][0, view, 1, row, col][mask], expected, atol=1e-10, rtol=0)

    with torch.no_grad():
        projected.bn.weight.fill_(1.0)
    output = projected.train()(features, cameras)
    output.square().sum().backward()
    assert projected.query_projection.weight.grad.abs().sum() > 0
    assert projected.key_projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="projections must be True or False"):
        EpipolarTransformer(CHANNELS, projections="yes")


def test_cosine_is_invariant_to_feature_scale_and_dot_is_not():
    torch.manual_seed(2)
    cameras = make_cameras()
    features = torch.randn(1, 4, CHANNELS, SIZE, SIZE)
    for similarity, invariant in (("cosine", True), ("dot", False)):
        layer = EpipolarTransformer(CHANNELS, samples=16, similarity=similarity)
        small = layer(features, cameras, return_attention=True)["attention"]
        large = layer(3 * features, cameras, return_attention=True)["attention"]
        assert torch.allclose(small, large, atol=1e-5) == invariant


def test_source_selection():
    centers = torch.from_numpy(random_rig(5, 7).centers.numpy())[None].float()
    distances = np.linalg.norm(centers[0, :, None].numpy() - centers[0, None].numpy(), axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = select_sources(centers, "nearest")
    assert nearest.shape == (1, 5, 1)
    assert nearest[0, :, 0].tolist() == distances.argmin(1).tolist()
    knn = select_sources(centers, "knn", k=3)
    for view in range(5):
        assert set(knn[0, view].tolist()) == set(np.argsort(distances[view])[:3].tolist())
    everything = select_sources(centers, "all")
    for view in range(5):
        assert sorted(everything[0, view].tolist()) == [u for u in range(5) if u != view]
    with pytest.raises(ValueError, match="at most 4"):
        select_sources(centers, "knn", k=5)


def test_attention_peaks_at_the_true_correspondence():
    cameras = make_cameras(distortion=True)
    _, projections = correspondences(cameras, view=0)
    layer = EpipolarTransformer(CHANNELS, samples=64, sources="nearest", softmax_scale=50.0)
    source = int(select_sources(cameras.centers, "nearest")[0, 0, 0])
    grid = pixel_grid(SIZE, SIZE, torch.float64, "cpu")
    seen = ((projections[source] >= 1) & (projections[source] <= SIZE - 2)).all(-1).nonzero()[:, 0]
    assert len(seen) > 10
    for index in seen[:: max(1, len(seen) // 8)].tolist():
        target = projections[source, index]
        features = torch.zeros(1, 4, CHANNELS, SIZE, SIZE)
        features[0, 0, 0].view(-1)[index] = 1.0                       # the query: one-hot at this pixel
        blob = torch.exp(-(grid - target).square().sum(-1) / (2 * 1.0 ** 2))
        features[0, source, 0] = blob.view(SIZE, SIZE).float()        # the source: a peak at the correspondence
        result = layer(features, cameras, return_attention=True)
        attention = result["attention"][0, 0, 0].reshape(SIZE * SIZE, -1)[index]
        pixels = result["sample_pixels"][0, 0, 0].reshape(SIZE * SIZE, -1, 2)[index]
        mask = result["sample_mask"][0, 0, 0].reshape(SIZE * SIZE, -1)[index]
        spacing = (pixels[1:] - pixels[:-1]).norm(dim=-1)[mask[1:] & mask[:-1]].max()
        # the bilinear interpolant of the blob peaks up to half a feature pixel off the exact point
        peak = pixels[attention.argmax()]
        assert (peak - target).norm() <= spacing + 0.5
        assert ((attention[:, None] * pixels).sum(0) - target).norm() <= 0.5
        assert attention.max() > 5 * attention[mask].mean()


def test_bad_input_is_rejected():
    layer = EpipolarTransformer(CHANNELS, samples=8)
    cameras = make_cameras()
    with pytest.raises(ValueError, match="channels"):
        layer(torch.zeros(1, 4, CHANNELS + 1, SIZE, SIZE), cameras)
    with pytest.raises(ValueError, match="image_size"):
        layer(torch.zeros(1, 4, CHANNELS, SIZE, 2 * SIZE), cameras)
    with pytest.raises(ValueError, match="batch shape"):
        layer(torch.zeros(2, 4, CHANNELS, SIZE, SIZE), cameras)
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((1, 4, CHANNELS, SIZE, SIZE), float("nan")), cameras)
    with pytest.raises(ValueError, match="similarity"):
        EpipolarTransformer(CHANNELS, similarity="l2")
    with pytest.raises(ValueError, match="source views"):
        EpipolarTransformer(CHANNELS, samples=8, sources="knn", k=4)(torch.zeros(1, 4, CHANNELS, SIZE, SIZE), cameras)


def test_the_residual_form_travels_with_the_weights():
    from core.engine.checkpoint import CheckpointError, load_state_strict
    gated = EpipolarTransformer(CHANNELS, samples=8, residual="gated")
    reference = EpipolarTransformer(CHANNELS, samples=8)
    load_state_strict(reference, EpipolarTransformer(CHANNELS, samples=8).state_dict(), "same.pth")
    with pytest.raises(CheckpointError, match="trained with the 'gated' residual.*set MODEL.FUSION.RESIDUAL gated"):
        load_state_strict(reference, gated.state_dict(), "gated.pth")
    old = {k: v for k, v in gated.state_dict().items() if not k.endswith("_extra_state")}   # before the option
    with pytest.raises(CheckpointError, match="missing keys: _extra_state"):
        load_state_strict(reference, old, "old.pth")
