"""Zimmermann & Brox's score-map lifters: output shapes, the reference's layer sizes counted by hand, a proper
viewpoint rotation, and a loss that falls in a few steps."""
import pytest
import torch

from core.geometry.rotation import canonical_frame
from core.registry import LIFTERS
from modeling.lifters.scoremap import ScoremapCanonicalLifter, ScoremapDirectLifter
from modeling.losses.canonical import canonical_mses, normalised_mse
from modeling.losses.heatmap import gaussian_heatmaps


def conv_pair(cin: int, width: int) -> int:
    """Parameters of a 3x3 convolution cin -> width and a 3x3 convolution width -> width, with biases."""
    return cin * width * 9 + width + width * width * 9 + width


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


# hand3d's PosePrior on 21 maps of 256 pixels: pooled to 32 x 32, convolved to 4 x 4 x 128, layers 512, 512, 63
POSE_PRIOR = conv_pair(21, 32) + conv_pair(32, 64) + conv_pair(64, 128) + \
    linear(4 * 4 * 128, 512) + linear(512, 512) + linear(512, 21 * 3)
# its ViewPoint network: convolved to 4 x 4 x 256, layers 256, 128 and the 3 axis-angle outputs
VIEWPOINT = conv_pair(21, 64) + conv_pair(64, 128) + conv_pair(128, 256) + \
    linear(4 * 4 * 256, 256) + linear(256, 128) + linear(128, 3)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_registry_holds_both_variants():
    assert LIFTERS.get("scoremap_direct") is ScoremapDirectLifter
    assert LIFTERS.get("scoremap_canonical") is ScoremapCanonicalLifter


def test_the_default_sizes_are_hand3ds():
    assert POSE_PRIOR == 1_636_255 and VIEWPOINT == 2_237_891
    assert count(ScoremapDirectLifter(num_joints=21)) == POSE_PRIOR
    canonical = ScoremapCanonicalLifter(num_joints=21)
    assert count(canonical.pose_prior) == POSE_PRIOR and count(canonical.viewpoint) == VIEWPOINT
    # Epipolar Transformers' RHD maps of 224 pixels pool to 28 x 28 and convolve to the same 4 x 4
    assert count(ScoremapCanonicalLifter(num_joints=21, scoremap_size=224)) == POSE_PRIOR + VIEWPOINT


def test_epipolar_transformers_human36m_sizes():
    """64 x 64 maps of 17 joints pool to 8 x 8 and convolve to 1 x 1 x 128 (its PosePrior input of 128)."""
    lifter = ScoremapDirectLifter(num_joints=17, scoremap_size=64)
    assert count(lifter) == conv_pair(17, 32) + conv_pair(32, 64) + conv_pair(64, 128) + linear(128, 512) + \
        linear(512, 512) + linear(512, 17 * 3) == 645_907


def test_outputs_and_a_proper_rotation():
    torch.manual_seed(0)
    maps = torch.rand(3, 17, 64, 64)
    direct = ScoremapDirectLifter(num_joints=17, scoremap_size=64)(maps)
    assert set(direct) == {"normalised_3d"} and direct["normalised_3d"].shape == (3, 17, 3)
    out = ScoremapCanonicalLifter(num_joints=17, scoremap_size=64).eval()(maps)
    assert out["canonical_3d"].shape == (3, 17, 3) and out["rotation"].shape == (3, 3, 3)
    rotation = out["rotation"].double()
    assert torch.allclose(rotation @ rotation.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3),
                          atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(out["normalised_3d"], out["canonical_3d"] @ out["rotation"])


@pytest.mark.parametrize("arguments, message", [
    ({"channels": ()}, "channels must be a non-empty list"), ({"hidden": (0,)}, "hidden must be"),
    ({"pool": 100}, "pool one in 1..scoremap_size"), ({"dropout": 1.0}, "dropout must be"),
    ({"view_dropout": -0.1}, "dropout must be"), ({"view_channels": (16, 1.5)}, "channels must be"),
])
def test_bad_arguments_fail_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message):
        ScoremapCanonicalLifter(num_joints=17, scoremap_size=64, **arguments)


def _tiny_batch():
    """The score maps of six random 2D poses and the canonical targets of six random root-relative 3D poses."""
    generator = torch.Generator().manual_seed(1)
    keypoints = torch.rand(6, 17, 2, generator=generator) * 31
    maps = gaussian_heatmaps(keypoints, torch.ones(6, 17), (32, 32), sigma=2.0)
    poses = torch.randn(6, 17, 3, generator=generator)
    poses = poses - poses[:, :1]
    frame = canonical_frame(poses, align=8, rotate=4)
    return maps, poses, poses @ frame, frame.transpose(-1, -2)


@pytest.mark.parametrize("canonical", [False, True])
def test_the_loss_falls_in_a_few_steps(canonical):
    torch.manual_seed(0)
    maps, poses, canonical_poses, rotations = _tiny_batch()
    sizes = dict(num_joints=17, scoremap_size=32, pool=4, channels=(8, 16), hidden=(64,), dropout=0.0)
    lifter = ScoremapCanonicalLifter(**sizes, view_channels=(8, 16), view_hidden=(32,), view_dropout=0.0) \
        if canonical else ScoremapDirectLifter(**sizes)
    optimiser = torch.optim.Adam(lifter.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = lifter(maps)
        loss = sum(canonical_mses(out["canonical_3d"], out["rotation"], canonical_poses, rotations).values()) \
            if canonical else normalised_mse(out["normalised_3d"], poses)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
