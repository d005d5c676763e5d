import pytest
import torch

from core.config import load_config
from datasets.synthetic.rigs import h36m_like_ring
from modeling.heads.dlt import DLTHead
from modeling.heads.views import view_weights
from modeling.pipelines import build_pipeline


def _reference_views(confidence, threshold=0.05, step=0.05):
    """Epipolar Transformers' triangulate_pymvg view selection for one joint, as its loop."""
    while True:
        selected = [v for v, c in enumerate(confidence) if c > threshold]
        if threshold < -1 or len(selected) > 1:
            return selected
        threshold -= step


def test_fallback_selects_the_views_of_the_reference_loop():
    generator = torch.Generator().manual_seed(0)
    confidence = torch.rand(500, 4, 3, generator=generator, dtype=torch.float64) ** 3 * 0.3   # many below 0.05
    confidence[:50, :, 0] = 0.0
    confidence[50:100, 1:, 1] = 0.0                                         # one view clearly seen
    weights = view_weights(confidence, False, 0.05, 0.05)
    agree = 0
    for sample in range(len(confidence)):
        for joint in range(3):
            column = confidence[sample, :, joint].tolist()
            if any(c == 0.05 for c in column):
                continue                                                      # the first threshold keeps 0.05
            expected = set(_reference_views(column))
            assert set(torch.nonzero(weights[sample, :, joint]).flatten().tolist()) == expected, column
            agree += 1
    assert agree == 1500
    assert ((weights > 0).sum(1) >= 2).all()


def test_without_fallback_low_views_are_dropped_and_weights_follow_the_confidence():
    confidence = torch.tensor([[[0.9], [0.5], [0.04], [0.01]]])
    assert view_weights(confidence, False, 0.05).flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert view_weights(confidence, True, 0.05).flatten().tolist() == pytest.approx([0.9, 0.5, 0.0, 0.0])
    single = torch.tensor([[[0.9], [0.04], [0.03], [0.0]]])
    assert view_weights(single, False, 0.05).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert view_weights(single, False, 0.05, 0.05).flatten().tolist() == [1.0, 1.0, 1.0, 0.0]
    nan = torch.tensor([[[0.9], [float("nan")], [0.0]]])
    assert view_weights(nan, False, 0.05, 0.05).flatten().tolist() == [1.0, 0.0, 1.0]


def test_dlt_head_triangulates_a_joint_that_only_one_view_is_sure_of():
    cameras = h36m_like_ring(4).unsqueeze(0).expand(2, 4)
    points = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 800 + 100
    pixels = cameras.project(points.unsqueeze(1))
    confidence = torch.full(pixels.shape[:-1], 0.02, dtype=pixels.dtype)
    confidence[:, 0] = 0.9
    strict = DLTHead(min_confidence=0.05)(pixels, confidence, cameras)
    assert not strict.valid.any()
    fallback = DLTHead(min_confidence=0.05, fallback_step=0.05)(pixels, confidence, cameras)
    assert fallback.valid.all()
    torch.testing.assert_close(fallback.points_3d, points, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="fallback_step"):
        DLTHead(fallback_step=-0.1)


def test_config_reaches_the_heads():
    for name in ("dlt", "ransac"):
        cfg = load_config(None, ["MODEL.HEAD.NAME", name, "MODEL.HEAD.MIN_CONFIDENCE", "0.05",
                                 "MODEL.HEAD.CONFIDENCE_FALLBACK", "0.05"])
        assert build_pipeline(cfg).head.fallback_step == 0.05
