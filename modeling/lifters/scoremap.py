"""The score-map lifting networks of Zimmermann & Brox (ICCV 2017, "Learning to Estimate 3D Hand Pose from Single
RGB Images"), as lmb-freiburg/hand3d (``nets/PosePriorNetwork.py``) and Epipolar Transformers
(``modeling/lifting.py``, tasks ``lifting_direct`` and ``lifting_rot``) build them.

Input: one Gaussian score map per joint of a square crop, (B, J, S, S). Both networks average-pool the maps by
``pool`` (8; ceil mode, so a partial window averages the pixels it holds, as TensorFlow's SAME pooling), then
encode them with pairs of 3x3 convolutions (stride 1, then stride 2) per entry of ``channels``, each followed by
a leaky ReLU of slope 0.01, flatten, and regress with fully connected layers (leaky ReLU, dropout) of the widths
``hidden``:

- ``scoremap_direct`` ("Direct"): the PosePrior network alone, predicting the root-relative pose divided by a
  bone length (``normalised_3d``, (B, J, 3)) in the camera frame.
- ``scoremap_canonical`` ("Proposed"): the PosePrior network predicts the pose in its canonical frame
  (``canonical_3d``; ``core.geometry.rotation.canonical_frame``), the ViewPoint network (its own encoder of
  ``view_channels`` and layers of ``view_hidden``) an axis-angle vector whose rotation ``rotation`` (B, 3, 3)
  turns it back: ``normalised_3d = canonical_3d @ rotation``.

Published setting (hand3d, kept as the defaults): 256 x 256 maps, pool 8 (to 32 x 32), PosePrior channels 32, 64,
128 (to 4 x 4 x 128) and layers 512, 512 with dropout 0.2 (keep 0.8); ViewPoint channels 64, 128, 256 and layers
256, 128 with dropout 0.25 (keep 0.75); Xavier-initialised weights and biases of 1e-4.

Deviations: the references append the one-hot hand side (left, right) to the flattened features of both
networks and mirror a right hand's canonical pose (z -> -z) before rotating it; here no hand side enters (a data
set presents every hand as one side, or lets the network tell). The ViewPoint network's three outputs (the
reference's separate 1-unit layers ux, uy, uz) are one 3-unit layer. Dropout is active in training, as in
Epipolar Transformers (hand3d's lifting training script leaves its dropout switched off). The initialisation is
hand3d's (Epipolar Transformers keeps PyTorch's default). The stride-2 convolutions pad every side by 1, as
Epipolar Transformers' (TensorFlow's SAME pads an even input after it only: a half-pixel shift of the sampling).
"""
from typing import Dict, Sequence

from torch import Tensor, nn

from core.geometry.rotation import axis_angle_to_matrix
from core.registry import LIFTERS
from modeling.arguments import check_dropout

NEGATIVE_SLOPE = 0.01  # hand3d's NetworkOps.neg_slope_of_relu


def _check_widths(name: str, widths: Sequence[int]) -> None:
    if len(widths) == 0 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"{name} must be a non-empty list of positive whole numbers, got {widths!r}")


class ScoremapEncoder(nn.Sequential):
    """(B, C, s, s) -> (B, channels[-1], s / 2**len(channels), ...): per width a 3x3 convolution of stride 1 and one
    of stride 2, each followed by a leaky ReLU."""

    def __init__(self, in_channels: int, channels: Sequence[int]):
        layers = []
        for width in channels:
            for stride in (1, 2):
                layers += [nn.Conv2d(in_channels, width, 3, stride=stride, padding=1), nn.LeakyReLU(NEGATIVE_SLOPE)]
                in_channels = width
        super().__init__(*layers)


class Regressor(nn.Sequential):
    """Fully connected layers of the widths ``hidden`` (each with a leaky ReLU and dropout), then a linear output."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, dropout: float):
        layers = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.LeakyReLU(NEGATIVE_SLOPE), nn.Dropout(dropout)]
            in_features = width
        super().__init__(*layers, nn.Linear(in_features, out_features))


def _encoded_side(side: int, levels: int) -> int:
    """The side of the encoder's output for an input of ``side``: ``levels`` convolutions of stride 2 (padding 1)."""
    for _ in range(levels):
        side = (side - 1) // 2 + 1
    return side


class _ScoremapNetwork(nn.Sequential):
    """An encoder and a regressor of pooled (B, J, s, s) score maps, initialised as hand3d's: Xavier-uniform
    weights, biases 1e-4."""

    def __init__(self, num_joints: int, pooled_size: int, channels: Sequence[int], hidden: Sequence[int],
                 out_features: int, dropout: float):
        _check_widths("channels", channels)
        _check_widths("hidden", hidden)
        check_dropout(dropout)
        side = _encoded_side(pooled_size, len(channels))
        super().__init__(ScoremapEncoder(num_joints, channels), nn.Flatten(),
                         Regressor(channels[-1] * side * side, hidden, out_features, dropout))
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.constant_(layer.bias, 1e-4)


def _pooling(scoremap_size: int, pool: int) -> nn.AvgPool2d:
    """Ceil-mode average pooling by ``pool`` (a partial window averages the pixels it holds)."""
    if isinstance(scoremap_size, bool) or not isinstance(scoremap_size, int) or scoremap_size < 1 or \
            isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= scoremap_size:
        raise ValueError(f"scoremap_size must be a positive whole number of pixels and pool one in 1..scoremap_size, "
                         f"got {scoremap_size!r} and {pool!r}")
    return nn.AvgPool2d(pool, stride=pool, ceil_mode=True)


@LIFTERS.register("scoremap_direct")
class ScoremapDirectLifter(nn.Module):
    """(B, J, S, S) score maps -> ``normalised_3d`` (B, J, 3): Zimmermann & Brox's "Direct" PosePrior network."""

    inputs = "scoremaps"
    canonical = False

    def __init__(self, num_joints: int, scoremap_size: int = 256, pool: int = 8,
                 channels: Sequence[int] = (32, 64, 128), hidden: Sequence[int] = (512, 512), dropout: float = 0.2):
        super().__init__()
        self.num_joints, self.scoremap_size, self.pool = num_joints, scoremap_size, _pooling(scoremap_size, pool)
        self.pooled_size = -(-scoremap_size // pool)
        self.pose_prior = _ScoremapNetwork(num_joints, self.pooled_size, channels, hidden, num_joints * 3, dropout)

    def forward(self, scoremaps: Tensor) -> Dict[str, Tensor]:
        return {"normalised_3d": self.pose_prior(self.pool(scoremaps)).unflatten(-1, (self.num_joints, 3))}


@LIFTERS.register("scoremap_canonical")
class ScoremapCanonicalLifter(ScoremapDirectLifter):
    """(B, J, S, S) score maps -> ``canonical_3d`` (B, J, 3), ``rotation`` (B, 3, 3) and ``normalised_3d`` =
    canonical_3d @ rotation: Zimmermann & Brox's "Proposed" network, the PosePrior network (here predicting the
    canonical pose) and a ViewPoint network."""

    canonical = True

    def __init__(self, num_joints: int, scoremap_size: int = 256, pool: int = 8,
                 channels: Sequence[int] = (32, 64, 128), hidden: Sequence[int] = (512, 512), dropout: float = 0.2,
                 view_channels: Sequence[int] = (64, 128, 256), view_hidden: Sequence[int] = (256, 128),
                 view_dropout: float = 0.25):
        super().__init__(num_joints, scoremap_size, pool, channels, hidden, dropout)
        self.viewpoint = _ScoremapNetwork(num_joints, self.pooled_size, view_channels, view_hidden, 3, view_dropout)

    def forward(self, scoremaps: Tensor) -> Dict[str, Tensor]:
        pooled = self.pool(scoremaps)
        canonical = self.pose_prior(pooled).unflatten(-1, (self.num_joints, 3))
        rotation = axis_angle_to_matrix(self.viewpoint(pooled))
        return {"canonical_3d": canonical, "rotation": rotation, "normalised_3d": canonical @ rotation}
