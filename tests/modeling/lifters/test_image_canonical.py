"""Epipolar Transformers' image lifting heads: shapes, its layer sizes counted by hand, a proper rotation, and a loss
that falls in a few steps."""
import torch

from core.geometry.rotation import canonical_frame
from core.registry import LIFTERS
from modeling.lifters.image_canonical import ImageCanonicalLifter
from modeling.losses.canonical import canonical_mses


def test_two_linear_heads_on_resnet50_features():
    """ResNet-50's 2048 pooled features -> 17 x 3 canonical coordinates and 3 axis-angle values."""
    lifter = LIFTERS.get("image_canonical")(in_features=2048, num_joints=17)
    assert isinstance(lifter, ImageCanonicalLifter)
    assert sum(p.numel() for p in lifter.parameters()) == (2048 * 51 + 51) + (2048 * 3 + 3) == 110_646
    out = lifter(torch.randn(5, 2048))
    assert out["canonical_3d"].shape == out["normalised_3d"].shape == (5, 17, 3) and out["rotation"].shape == (5, 3, 3)
    rotation = out["rotation"].double()
    assert torch.allclose(rotation.transpose(-1, -2) @ rotation, torch.eye(3, dtype=torch.float64).expand(5, 3, 3),
                          atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(5, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(out["normalised_3d"], out["canonical_3d"] @ out["rotation"])


def test_the_loss_falls_in_a_few_steps():
    generator = torch.Generator().manual_seed(0)
    features, poses = torch.randn(6, 64, generator=generator), torch.randn(6, 17, 3, generator=generator)
    poses = poses - poses[:, :1]
    frame = canonical_frame(poses, align=8, rotate=4)
    torch.manual_seed(0)
    lifter = ImageCanonicalLifter(in_features=64, num_joints=17)
    optimiser = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = lifter(features)
        loss = sum(canonical_mses(out["canonical_3d"], out["rotation"], poses @ frame,
                                  frame.transpose(-1, -2)).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
