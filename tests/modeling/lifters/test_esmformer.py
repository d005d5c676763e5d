import pytest
import torch

from modeling.lifters.esmformer import ESMformer, MultiViewFusion, RelativeAttention


def test_sizes_follow_the_reference():
    # SMFE 4 x 0.695 M, MILF 12.70 M, MCLF 3.17 M, head 81 k; the self-supervised frame MLP adds 1857
    assert sum(p.numel() for p in ESMformer().parameters()) == 16_649_955
    assert sum(p.numel() for p in ESMformer(centre_frame=True).parameters()) == 16_649_955 + 1857


def test_cross_level_fusion_has_a_layer_norm_per_attention_input():
    """As the reference's MCLF_Block: norm3_11 .. norm3_33, each used once, then one norm of the concatenation."""
    torch.manual_seed(0)
    model = ESMformer(num_frames=9, num_views=2, smfe_depth=1, milf_depth=1, features=16)
    norms = [m for m in model.cross.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 10 and sum(n.normalized_shape == (16,) for n in norms) == 9
    model(torch.randn(2, 9, 2, 17, 2)).square().sum().backward()
    for norm in norms:
        assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0


def test_shapes_views_and_gradients():
    torch.manual_seed(0)
    model = ESMformer(num_frames=9, num_views=3, smfe_depth=1, milf_depth=1)
    x = torch.randn(2, 9, 3, 17, 2, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 9, 17, 3)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:, :, 2].abs().sum() > 0   # every view feeds the output
    centre = ESMformer(num_frames=9, num_views=3, smfe_depth=1, milf_depth=1, centre_frame=True)
    assert centre(x).shape == (2, 1, 17, 3)


def test_relative_attention_subtracts_the_attended_values_from_the_convolved_query():
    torch.manual_seed(1)
    attention = RelativeAttention(6, 2)
    x = torch.randn(3, 5, 6)
    q = attention.query(x.transpose(1, 2)).transpose(1, 2)
    k, v = attention.key(x), attention.value(x)
    heads = [slice(0, 3), slice(3, 6)]
    out = torch.cat([q[..., h] - torch.softmax(q[..., h] @ k[..., h].transpose(1, 2) / 3 ** 0.5, -1) @ v[..., h]
                     for h in heads], -1)
    assert torch.allclose(attention(x), attention.proj(out), atol=1e-6)


def test_view_fusion_mixes_the_views_by_convolution_and_adds_their_sum():
    torch.manual_seed(2)
    fusion = MultiViewFusion(3, 8).train()
    views = torch.randn(4, 3, 9, 8, requires_grad=True)
    expected = fusion.norm(fusion.mix_norm(fusion.mix(views)[:, 0]) + views.sum(1))   # the layers as written
    out = fusion(views)                                    # computed with the convolution in channels-last order
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    assert torch.isfinite(views.grad).all() and fusion.mix[1].weight.grad.abs().sum() > 0


def test_bad_settings_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="num_views must be >= 2"):
        ESMformer(num_views=1)
    with pytest.raises(ValueError, match="multiple of 9"):
        ESMformer(num_frames=10)
    with pytest.raises(ValueError, match=r"expected 2D keypoints \(B, 9, 4, 17, 2\)"):
        ESMformer(num_frames=9, smfe_depth=1, milf_depth=1)(torch.zeros(1, 9, 3, 17, 2))
