"""The Semantic Graph Convolutional Network lifter of Zhao et al., "Semantic Graph Convolutional Networks for
3D Human Pose Regression" (CVPR 2019), in the form ERD (Kang et al., BMVC 2020, github.com/kyang-06/ERD_3DPose,
``network/gcn_model.py`` and ``network/non_local.py``) uses as a base lifter.

Graph: the bones of the skeleton (``core.skeleton.Skeleton.adjacency``, DATASETS.SKELETON) with self loops. A semantic graph convolution
maps node features X (B, J, cin) to A_self (X W0) + A_nbr (X W1) + b: A is the row softmax of one learnable
logit per edge of the graph (self loops included; initialised to 1, zero weight off the graph), A_self its
diagonal and A_nbr the rest, W0 the self and W1 the neighbour weight. W = (W0, W1) is one (2, cin, cout) tensor
initialised Xavier-uniform with gain 1.414 as in the reference; for such a tensor PyTorch's fans are cin x cout
and 2 x cout, so the bound is 1.414 sqrt(6 / (cin cout + 2 cout)) (kept as in the reference, smaller than a
per-matrix Xavier bound). Biases U(+-1 / sqrt(cout)).

Network (ERD's): a graph convolution layer 2 -> ``hidden`` (semantic graph convolution, batch norm over the
channels, ReLU, dropout when ``dropout`` > 0) and a non-local block; ``num_blocks`` x [residual block x + f(x),
f two such ``hidden`` -> ``hidden`` layers; non-local block]; a semantic graph convolution ``hidden`` -> 3.
``non_local=False`` leaves the non-local blocks out. ERD's setting is the default: 128 channels, 4 blocks,
non-local blocks, no dropout, which gives 434,733 parameters (the SemGCN README reports 0.43 M). Input:
standardised 2D (B, J x 2) flattened joint-major from (B, J, 2); output: standardised 3D of all J joints, root
included, (B, J x 3) joint-major.

Non-local block (1-D embedded concatenation form, ``inter = hidden // 2``): theta, phi and g are 1 x 1
convolutions with bias; f_ij = ReLU(w^T [theta_i; phi_j]) / J for every joint pair, y = f g, z = x + W(y) with
W a 1 x 1 convolution inter -> hidden followed by a batch norm whose scale and shift start at zero, so the block
starts as the identity. Kaiming-normal convolution and w weights, zero convolution biases, as in the reference.

Deviations from the references:

- ERD stores a full J x J edge-logit matrix per graph convolution (only the graph's entries get gradients);
  here only the 49 logits of the graph's edges are stored, as in the original SemGCN, so ERD's count is
  2,400 higher (437,133) with the same function.
- Off-graph logits are -inf (exact zeros after the softmax) instead of the references' -9e15.
- ERD's non-local blocks use group size 1 (no joint reordering, no pooling), and so does this module; the
  original SemGCN reorders the joints into groups and max-pools phi and g with group size 2.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.registry import LIFTERS
from core.skeleton import H36M17, Skeleton
from modeling.arguments import check_dropout


class SemGraphConv(nn.Module):
    """Semantic graph convolution (B, J, cin) -> (B, J, cout) on the graph ``adjacency`` (J, J, with self loops)."""

    def __init__(self, in_features: int, out_features: int, adjacency: Tensor):
        super().__init__()
        self.num_nodes = len(adjacency)
        rows, cols = adjacency.nonzero(as_tuple=True)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.weight = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.weight, gain=1.414)
        self.edge_logits = nn.Parameter(torch.ones(len(rows)))
        bound = 1.0 / math.sqrt(out_features)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def adjacency(self) -> Tensor:
        """The (J, J) edge weights: a softmax over each joint's neighbourhood, itself included."""
        logits = self.edge_logits.new_full((self.num_nodes, self.num_nodes), float("-inf"))
        return logits.index_put((self.rows, self.cols), self.edge_logits).softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        adjacency = self.adjacency()
        self_weights = adjacency.diagonal()
        neighbour_weights = adjacency - torch.diag(self_weights)
        return self_weights[:, None] * (x @ self.weight[0]) + neighbour_weights @ (x @ self.weight[1]) + self.bias


class GraphConvLayer(nn.Module):
    """``SemGraphConv``, batch norm over the channels, ReLU, dropout if ``dropout`` > 0; (B, J, cin) -> (B, J, cout)."""

    def __init__(self, in_features: int, out_features: int, adjacency: Tensor, dropout: float):
        super().__init__()
        self.conv = SemGraphConv(in_features, out_features, adjacency)
        self.norm = nn.BatchNorm1d(out_features)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(F.relu(self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2)))


class ResGraphConv(nn.Module):
    """x + two ``hidden`` -> ``hidden`` ``GraphConvLayer`` s of x."""

    def __init__(self, hidden: int, adjacency: Tensor, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(GraphConvLayer(hidden, hidden, adjacency, dropout),
                                    GraphConvLayer(hidden, hidden, adjacency, dropout))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class GraphNonLocal(nn.Module):
    """Non-local block over the joints, embedded concatenation form; (B, J, C) -> (B, J, C), the identity at init."""

    def __init__(self, channels: int):
        super().__init__()
        inter = channels // 2
        self.theta, self.phi, self.g = (nn.Conv1d(channels, inter, 1) for _ in range(3))
        self.pair_weight = nn.Parameter(torch.randn(2 * inter) * inter ** -0.5)  # Kaiming normal, fan-in 2 inter
        self.out = nn.Sequential(nn.Conv1d(inter, channels, 1), nn.BatchNorm1d(channels))
        for conv in (self.theta, self.phi, self.g, self.out[0]):
            nn.init.kaiming_normal_(conv.weight)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: Tensor) -> Tensor:
        features = x.transpose(1, 2)  # (B, C, J)
        theta_weight, phi_weight = self.pair_weight.chunk(2)
        theta = torch.einsum("c,bci->bi", theta_weight, self.theta(features))
        phi = torch.einsum("c,bcj->bj", phi_weight, self.phi(features))
        pairs = F.relu(theta[:, :, None] + phi[:, None, :]) / features.shape[2]  # (B, J, J): f_ij
        y = self.g(features) @ pairs.transpose(1, 2)  # (B, inter, J): y_i = sum_j f_ij g_j
        return x + self.out(y).transpose(1, 2)


@LIFTERS.register("semgcn")
class SemGCNLifter(nn.Module):
    """(B, J x 2) standardised 2D -> (B, J x 3) standardised 3D of all joints (see the module docstring)."""

    single_view = True
    inputs = "standardised"
    outputs_all_joints = True

    def __init__(self, skeleton: Skeleton = H36M17, hidden: int = 128, num_blocks: int = 4, dropout: float = 0.0,
                 non_local: bool = True):
        super().__init__()
        check_dropout(dropout)
        self.num_joints = skeleton.num_joints
        adjacency = torch.from_numpy(skeleton.adjacency())
        layers = [GraphConvLayer(2, hidden, adjacency, dropout)] + ([GraphNonLocal(hidden)] if non_local else [])
        for _ in range(num_blocks):
            layers += [ResGraphConv(hidden, adjacency, dropout)] + ([GraphNonLocal(hidden)] if non_local else [])
        self.layers = nn.Sequential(*layers)
        self.output_layer = SemGraphConv(hidden, 3, adjacency)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != 2 * self.num_joints:
            raise ValueError(f"SemGCNLifter: expected standardised 2D (B, {2 * self.num_joints}), "
                             f"got {tuple(x.shape)}")
        return self.output_layer(self.layers(x.reshape(len(x), self.num_joints, 2))).flatten(1)
