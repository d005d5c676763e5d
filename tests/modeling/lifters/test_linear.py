import torch

from modeling.lifters.linear import LinearLifter, MaxNormLinear


def test_published_size_and_shapes():
    lifter = LinearLifter(in_features=17 * 2, out_features=16 * 3)  # 1024 units, 2 blocks
    params = sum(p.numel() for p in lifter.parameters())
    # Martinez et al.: about 4-5 M parameters (in 34 -> 1024, 4 x 1024^2, 1024 -> 48, batch norms)
    assert 4.2e6 < params < 4.4e6
    lifter.eval()
    assert lifter(torch.randn(5, 34)).shape == (5, 48)


def test_max_norm_clips_the_weight_in_the_forward_pass():
    layer = MaxNormLinear(8, 4, max_norm=1.0)
    with torch.no_grad():
        layer.weight.mul_(10)
        layer.bias.zero_()
    x = torch.randn(3, 8)
    expected = x @ (layer.weight / layer.weight.norm()).T
    assert torch.allclose(layer(x), expected, atol=1e-6)
    free = MaxNormLinear(8, 4, max_norm=None)
    free.load_state_dict(layer.state_dict())
    assert torch.allclose(free(x), x @ layer.weight.T + layer.bias, atol=1e-5)


def test_trains_on_a_learnable_mapping():
    torch.manual_seed(0)
    lifter = LinearLifter(6, 3, hidden=64, num_blocks=1, dropout=0.0)
    x = torch.randn(256, 6)
    y = x[:, :3] * 2 - x[:, 3:]
    optimizer = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = torch.mean((lifter(x) - y) ** 2)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first
