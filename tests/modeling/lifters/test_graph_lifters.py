"""The graph lifters: LCN (locally connected) and SemGCN (semantic graph convolutions with non-local blocks)."""
import math

import pytest
import torch
import torch.nn.functional as F

from core.registry import LIFTERS
from core.skeleton import H36M17, HAND21, PANOPTIC19
from modeling.lifters.lcn import LCNLifter, LCNLinear, knn_mask, lcn_adjacency
from modeling.lifters.semgcn import GraphNonLocal, SemGCNLifter, SemGraphConv

J = H36M17.num_joints


def hop_distances(adjacency: torch.Tensor) -> torch.Tensor:
    """(J, J) number of hops between joints in the graph ``adjacency`` (with self loops)."""
    distances = torch.full((J, J), J)
    reach = torch.eye(J, dtype=torch.bool)
    for hops in range(J):
        distances[reach & (distances == J)] = hops
        reach = (reach.float() @ adjacency.float()) > 0
    return distances


def dependence(function, in_channels: int = 2, out_channels: int = 3) -> torch.Tensor:
    """(J, J): summed |d output joint j / d input joint i| at a random input, for joint-major features."""
    jacobian = torch.autograd.functional.jacobian(function, torch.randn(1, J * in_channels))
    return jacobian.reshape(J, out_channels, J, in_channels).abs().sum(dim=(1, 3))



def check_registered_lifter(lifter, name: str):
    """``lifter`` is the registry's ``name``: a single-view lifter of standardised 2D to every joint's 3D, in
    training and in evaluation mode."""
    cls = type(lifter)
    assert LIFTERS.get(name) is cls
    assert cls.single_view and cls.inputs == "standardised" and cls.outputs_all_joints
    assert lifter(torch.randn(5, 34)).shape == (5, 51)
    lifter.eval()
    assert lifter(torch.randn(1, 34)).shape == (1, 51)

def test_lcn_graph_is_the_skeleton_plus_four_spine_links():
    adjacency = lcn_adjacency(H36M17)
    assert torch.equal(adjacency, adjacency.T) and adjacency.diagonal().all()
    edges = {(i, j) for i, j in adjacency.nonzero().tolist() if i < j}
    assert edges - set(H36M17.bones) == {(1, 7), (4, 7), (7, 11), (7, 14)} and set(H36M17.bones) <= edges


def test_knn_mask_facts():
    assert torch.equal(knn_mask(H36M17, 1), lcn_adjacency(H36M17))
    mask = knn_mask(H36M17, 3)
    assert int(mask.sum()) == 175
    assert mask.sum(dim=1).tolist() == [14, 13, 9, 5, 13, 9, 5, 17, 15, 11, 6, 14, 10, 5, 14, 10, 5]
    assert torch.equal(mask, hop_distances(lcn_adjacency(H36M17)) <= 3)
    with pytest.raises(ValueError, match="knn"):
        knn_mask(H36M17, 0)


def test_erd_size_and_shapes_lcn():
    lifter = LCNLifter()  # ERD: knn 3, 64 channels, 2 blocks
    nnz = 175

    def lcn(cin, cout):
        return nnz * cout * cin + J * cout

    norm_and_prelu = 2 * J + 1
    expected = (lcn(2, 64) + norm_and_prelu) + 2 * 2 * (lcn(64, 64) + norm_and_prelu) + lcn(64, 3)
    params = sum(p.numel() for p in lifter.parameters())
    assert params == expected == 2_928_866
    assert 2.9e6 < params < 3.0e6
    check_registered_lifter(lifter, "lcn")


def test_initialisation_bounds():
    layer = LCNLinear(knn_mask(H36M17, 2), 64, 3)
    assert layer.weight.abs().max() <= math.sqrt(1.5 / (64 * 3))
    assert layer.weight.abs().max() > 0.9 * math.sqrt(1.5 / (64 * 3))
    assert layer.bias.abs().max() <= 1 / math.sqrt(64 * 3)


def test_dense_weight_is_joint_major_kron_of_the_mask():
    mask = knn_mask(H36M17, 2)
    layer = LCNLinear(mask, 2, 4)
    assert torch.equal(layer.dense_weight() != 0, torch.kron(mask, torch.ones(4, 2, dtype=torch.bool)))
    # ERD's mask.repeat(cout, cin), read joint-major as its features are, connects every joint pair (its first
    # layer, 2 -> 64 channels, even with the 1-hop mask).
    tiled = knn_mask(H36M17, 1).repeat(64, 2).reshape(J, 64, J, 2)
    assert tiled.any(dim=3).any(dim=1).all()


def test_a_layer_is_local():
    torch.manual_seed(0)
    mask = knn_mask(H36M17, 1)
    dependent = dependence(LCNLinear(mask, 2, 3), 2, 3) > 0
    assert torch.equal(dependent, mask)


def test_the_network_is_local():
    torch.manual_seed(0)
    lifter = LCNLifter(hidden=8, num_blocks=0, dropout=0.0, knn=1).eval()  # 2 layers of 1 hop
    dependent = dependence(lifter, 2, 3) > 0
    within_two_hops = hop_distances(lcn_adjacency(H36M17)) <= 2
    assert torch.equal(dependent, within_two_hops)
    r_ankle, l_wrist = H36M17.joint_names.index("r_ankle"), H36M17.joint_names.index("l_wrist")
    assert hop_distances(lcn_adjacency(H36M17))[r_ankle, l_wrist] > 2 and not dependent[r_ankle, l_wrist]


def test_bad_input_is_rejected_lcn():
    with pytest.raises(ValueError, match=r"expected standardised 2D \(B, 34\), got \(2, 17, 2\)"):
        LCNLifter()(torch.zeros(2, 17, 2))


def test_gradients_reach_every_parameter_lcn():
    torch.manual_seed(0)
    lifter = LCNLifter(hidden=8, num_blocks=1)
    torch.mean((lifter(torch.randn(6, 34)) - torch.randn(6, 51)) ** 2).backward()
    for name, parameter in lifter.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def open_non_local_blocks(model: torch.nn.Module) -> None:
    """Give the non-local blocks' output batch norms unit scale, so that they are no longer the identity."""
    for module in model.modules():
        if isinstance(module, GraphNonLocal):
            torch.nn.init.ones_(module.out[1].weight)


def test_erd_size_and_shapes_semgcn():
    lifter = SemGCNLifter()  # ERD: 128 channels, 4 blocks, non-local, no dropout
    edges = J + 2 * len(H36M17.bones)  # 49 edge logits per graph convolution

    def graph_conv(cin, cout):
        return 2 * cin * cout + edges + cout

    def non_local(c):
        inter = c // 2
        return 3 * (c * inter + inter) + 2 * inter + (inter * c + c) + 2 * c

    hidden = 128
    layer = graph_conv(hidden, hidden) + 2 * hidden
    expected = (graph_conv(2, hidden) + 2 * hidden + non_local(hidden) + 4 * (2 * layer + non_local(hidden))
                + graph_conv(hidden, 3))
    params = sum(p.numel() for p in lifter.parameters())
    assert params == expected == 434_733
    assert round(params / 1e6, 2) == 0.43
    check_registered_lifter(lifter, "semgcn")


def test_non_local_block_is_the_identity_at_init():
    block = GraphNonLocal(16)
    x = torch.randn(4, J, 16)
    assert torch.equal(block(x), x)
    block.eval()
    assert torch.equal(block(x), x)


def test_non_local_block_matches_the_concatenation_form():
    torch.manual_seed(0)
    block = GraphNonLocal(8)
    open_non_local_blocks(block)
    block.eval()
    x = torch.randn(3, J, 8)
    features = x.transpose(1, 2)
    theta, phi, g = block.theta(features), block.phi(features), block.g(features)  # (B, 4, J)
    pairs = torch.cat([theta[:, :, :, None].expand(-1, -1, -1, J), phi[:, :, None, :].expand(-1, -1, J, -1)], dim=1)
    f = F.relu(torch.einsum("c,bcij->bij", block.pair_weight, pairs)) / J
    y = torch.einsum("bij,bcj->bci", f, g)
    assert torch.allclose(block(x), x + block.out(y).transpose(1, 2), atol=1e-6)


def test_edge_weights_are_a_softmax_over_the_skeleton_neighbourhood():
    adjacency = torch.from_numpy(H36M17.adjacency())
    assert torch.equal(adjacency, adjacency.T) and int(adjacency.sum()) == J + 2 * len(H36M17.bones)
    conv = SemGraphConv(4, 5, adjacency)
    weights = conv.adjacency()
    assert torch.allclose(weights, adjacency.float() / adjacency.sum(dim=1, keepdim=True))  # logits start at 1
    with torch.no_grad():
        conv.edge_logits.normal_()
    weights = conv.adjacency()
    assert torch.allclose(weights.sum(dim=1), torch.ones(J))
    assert (weights[~adjacency] == 0).all() and (weights[adjacency] > 0).all()


def test_graph_convolution_formula():
    torch.manual_seed(0)
    conv = SemGraphConv(4, 5, torch.from_numpy(H36M17.adjacency()))
    with torch.no_grad():
        conv.edge_logits.normal_()
    x = torch.randn(2, J, 4)
    a = conv.adjacency()
    expected = torch.stack([a[j, j] * x[:, j] @ conv.weight[0]
                            + sum(a[j, i] * x[:, i] @ conv.weight[1] for i in range(J) if i != j)
                            for j in range(J)], dim=1) + conv.bias
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_without_non_local_blocks_the_network_is_local():
    torch.manual_seed(0)
    lifter = SemGCNLifter(hidden=8, num_blocks=0, non_local=False).eval()  # 2 graph convolutions
    dependent = dependence(lifter) > 0
    assert torch.equal(dependent, hop_distances(torch.from_numpy(H36M17.adjacency())) <= 2)


def test_non_local_blocks_connect_distant_joints():
    torch.manual_seed(0)
    lifter = SemGCNLifter(hidden=8, num_blocks=0)
    open_non_local_blocks(lifter)
    dependent = dependence(lifter.eval()) > 0
    assert dependent[H36M17.joint_names.index("r_ankle"), H36M17.joint_names.index("l_wrist")]


def test_bad_input_is_rejected_semgcn():
    with pytest.raises(ValueError, match=r"expected standardised 2D \(B, 34\), got \(2, 17, 2\)"):
        SemGCNLifter()(torch.zeros(2, 17, 2))


def test_gradients_reach_every_parameter_semgcn():
    torch.manual_seed(0)
    lifter = SemGCNLifter(hidden=8, num_blocks=1)
    open_non_local_blocks(lifter)  # at init a block's inner parameters get zero gradient through its zero scale
    torch.mean((lifter(torch.randn(6, 34)) - torch.randn(6, 51)) ** 2).backward()
    for name, parameter in lifter.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("lifter_cls", [LCNLifter, SemGCNLifter])
def test_eval_is_deterministic_and_training_uses_dropout(lifter_cls):
    torch.manual_seed(0)
    lifter = lifter_cls(hidden=8, num_blocks=1, dropout=0.25)
    x = torch.randn(4, 34)
    assert not torch.equal(lifter(x), lifter(x))
    lifter.eval()
    assert torch.equal(lifter(x), lifter(x))


@pytest.mark.parametrize("lifter_cls, ratio", [(LCNLifter, 0.7), (SemGCNLifter, 0.8)])
def test_a_few_adam_steps_reduce_the_error(lifter_cls, ratio):
    torch.manual_seed(0)
    lifter = lifter_cls(hidden=16, num_blocks=1, dropout=0.0)
    x, y = torch.randn(64, 34), torch.randn(64, 51)
    optimizer = torch.optim.Adam(lifter.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.mean((lifter(x) - y) ** 2)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < ratio * losses[0]


@pytest.mark.parametrize("skeleton", [PANOPTIC19, HAND21])
def test_graph_lifters_take_the_graph_of_any_skeleton(skeleton):
    torch.manual_seed(0)
    joints = skeleton.num_joints
    graph = torch.from_numpy(skeleton.adjacency())
    semgcn = SemGCNLifter(skeleton, hidden=8, num_blocks=0, non_local=False).eval()
    jacobian = torch.autograd.functional.jacobian(semgcn, torch.randn(1, joints * 2))
    dependent = jacobian.reshape(joints, 3, joints, 2).abs().sum(dim=(1, 3)) > 0
    two_hops = (graph.float() @ graph.float()) > 0
    assert torch.equal(dependent, two_hops)                       # 2 graph convolutions: 2 hops of its bones
    lcn = LCNLifter(skeleton, hidden=8, num_blocks=0, knn=1).eval()
    assert lcn(torch.randn(3, joints * 2)).shape == (3, joints * 3)
    names = skeleton.common_names()
    links = [(names.index(a), names.index(b)) for a, b in (("l_hip", "spine"), ("l_shoulder", "spine"))
             if a in names and b in names]
    assert torch.equal(lcn_adjacency(skeleton), graph) == (not links)   # panoptic19 has no spine: its bones alone
