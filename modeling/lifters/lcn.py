"""The Locally Connected Network lifter of Ci et al., "Optimizing Network Structure for 3D Human Pose
Estimation" (ICCV 2019), in the form ERD (Kang et al., "Explicit Residual Descent for 3D Human Pose
Estimation from 2D Joint Locations", BMVC 2020, github.com/kyang-06/ERD_3DPose, ``network/lcn_model.py``)
uses as a base lifter.

A locally connected layer maps per-joint features (B, J x cin) to (B, J x cout) with its own cout x cin weight
block for every (output joint j, input joint i) pair with i within ``knn`` hops of j in the LCN graph
(``lcn_adjacency``: the skeleton's bones plus, where the layout has those joints, LCN's hip-spine and
shoulder-spine links (``LCN_EXTRA_LINKS``), self loops included); the other blocks are zero. Weights are not shared between joints or pairs. Only the
allowed blocks are stored (nnz(M) x cout x cin weights and J x cout biases, M the K-hop mask); the dense
(J cout, J cin) matrix is scattered from them in every forward pass. Initialisation as in ERD: each block
Kaiming-uniform with a = sqrt(3) and fan-in cout x cin, i.e. U(+-sqrt(1.5 / (cout cin))), and biases
U(+-1 / sqrt(cout cin)).

Network (ERD's): a locally connected layer 2 -> ``hidden``, batch norm, PReLU, dropout; ``num_blocks``
residual blocks x + f(x), f two such ``hidden`` -> ``hidden`` layers; a locally connected layer ``hidden`` -> 3
without normalisation or activation. The batch norms are ``BatchNorm1d(J)`` on the (B, J, hidden)
features, i.e. one mean, variance, scale and shift per joint pooled over the batch and the channels, as in
ERD; the original TensorFlow LCN normalises per channel, pooled over the joints. The PReLUs have a single
slope each. ERD's setting is the default: knn 3, 64 channels, 2 blocks, dropout 0.25, which gives
2,928,866 parameters. Input: standardised 2D (B, J x 2) flattened joint-major from (B, J, 2); output:
standardised 3D of all J joints, root included, (B, J x 3) joint-major.

Fixed bug of the reference: ERD builds the dense mask as ``mask.repeat(cout, cin)``, which puts M[r % J, c % J]
at entry (r, c), a channel-major layout (index channel x J + joint), while its features are joint-major
(index joint x channels + channel: the inputs are flattened from (B, J, 2), and the batch-norm view (B, J, C)
and the output view (B, J, 3) read them that way). Read joint-major, that mask connects every output joint to
every input joint already in the first layer, so ERD's "LCN" is a fixed sparse but non-local MLP. Here the
mask is kron(M, ones(cout, cin)) over joint-major features, the local layout of the original LCN (its
TensorFlow code masks weights of shape (J, cin, J, cout) with M reshaped to (J, 1, J, 1)): after L layers an
output joint depends only on input joints within L x knn hops.

Not kept from the original LCN (nor by ERD): weight max-norm clipping, leaky ReLU, 3 residual blocks and
its skip connection adding the input x, y to the output.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.registry import LIFTERS
from core.skeleton import H36M17, Skeleton
from modeling.arguments import check_dropout

# The links LCN's graph adds to the bones of the Human3.6M skeleton (by common joint name).
LCN_EXTRA_LINKS = (("r_hip", "spine"), ("l_hip", "spine"), ("l_shoulder", "spine"), ("r_shoulder", "spine"))


def lcn_adjacency(skeleton: Skeleton) -> Tensor:
    """The (J, J) boolean LCN graph of ``skeleton``: its bones and the ``LCN_EXTRA_LINKS`` between joints it has,
    symmetric, with self loops."""
    adjacency = torch.from_numpy(skeleton.adjacency())
    names = skeleton.common_names()
    for a, b in LCN_EXTRA_LINKS:
        if a in names and b in names:
            adjacency[names.index(a), names.index(b)] = adjacency[names.index(b), names.index(a)] = True
    return adjacency


def knn_mask(skeleton: Skeleton, knn: int) -> Tensor:
    """(J, J) boolean mask of the joint pairs within ``knn`` hops of each other in the LCN graph (A^knn > 0)."""
    if not isinstance(knn, int) or knn < 1:
        raise ValueError(f"knn must be a positive integer, got {knn!r}")
    adjacency = lcn_adjacency(skeleton).float()
    reach = adjacency
    for _ in range(knn - 1):
        reach = (reach @ adjacency).clamp(max=1.0)
    return reach > 0


class LCNLinear(nn.Module):
    """Locally connected linear layer: (B, J x cin) -> (B, J x cout), joint-major, one cout x cin weight block per
    (output joint, input joint) pair allowed by ``mask`` (J, J); ``mask[j, i]`` lets output joint j read joint i."""

    def __init__(self, mask: Tensor, in_channels: int, out_channels: int):
        super().__init__()
        self.num_joints, self.in_channels, self.out_channels = len(mask), in_channels, out_channels
        rows, cols = mask.nonzero(as_tuple=True)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.weight = nn.Parameter(torch.empty(len(rows), out_channels, in_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(3))  # fan-in of a (n, cout, cin) tensor: cout x cin
        bound = 1.0 / math.sqrt(out_channels * in_channels)
        self.bias = nn.Parameter(torch.empty(self.num_joints * out_channels).uniform_(-bound, bound))

    def dense_weight(self) -> Tensor:
        """The (J cout, J cin) weight matrix, zero outside the mask's blocks."""
        joints, cout, cin = self.num_joints, self.out_channels, self.in_channels
        blocks = self.weight.new_zeros(joints, joints, cout, cin).index_put((self.rows, self.cols), self.weight)
        return blocks.transpose(1, 2).reshape(joints * cout, joints * cin)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.dense_weight(), self.bias)


class LCNLayer(nn.Module):
    """``LCNLinear``, batch norm per joint, PReLU, dropout; (B, J x cin) -> (B, J x cout)."""

    def __init__(self, mask: Tensor, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.linear = LCNLinear(mask, in_channels, out_channels)
        self.norm = nn.BatchNorm1d(len(mask))
        self.activation = nn.PReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.linear(x).view(len(x), self.linear.num_joints, self.linear.out_channels))
        return self.dropout(self.activation(y)).flatten(1)


class LCNBlock(nn.Module):
    """x + two ``hidden`` -> ``hidden`` ``LCNLayer`` s of x."""

    def __init__(self, mask: Tensor, hidden: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(LCNLayer(mask, hidden, hidden, dropout), LCNLayer(mask, hidden, hidden, dropout))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


@LIFTERS.register("lcn")
class LCNLifter(nn.Module):
    """(B, J x 2) standardised 2D -> (B, J x 3) standardised 3D of all joints (see the module docstring)."""

    single_view = True
    inputs = "standardised"
    outputs_all_joints = True

    def __init__(self, skeleton: Skeleton = H36M17, hidden: int = 64, num_blocks: int = 2, dropout: float = 0.25,
                 knn: int = 3):
        super().__init__()
        check_dropout(dropout)
        self.num_joints = skeleton.num_joints
        mask = knn_mask(skeleton, knn)
        self.input_layer = LCNLayer(mask, 2, hidden, dropout)
        self.blocks = nn.Sequential(*(LCNBlock(mask, hidden, dropout) for _ in range(num_blocks)))
        self.output_layer = LCNLinear(mask, hidden, 3)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != 2 * self.num_joints:
            raise ValueError(f"LCNLifter: expected standardised 2D (B, {2 * self.num_joints}), got {tuple(x.shape)}")
        return self.output_layer(self.blocks(self.input_layer(x)))
