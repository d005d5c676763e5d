"""The "simple yet effective baseline" 2D-to-3D lifter of Martinez et al. (ICCV 2017).

A linear layer to ``hidden`` units, ``num_blocks`` residual blocks of two (linear, batch norm,
ReLU, dropout) layers each, and a linear output layer; every linear layer uses a weight whose
L2 norm is clipped to ``max_norm`` in the forward pass, as the reference TensorFlow code does with
``tf.clip_by_norm`` (``max_norm`` 0 disables it). Kaiming-normal initialisation. Published
setting: 1024 units, 2 blocks, dropout 0.5, Adam 1e-3 with exponential decay, batch 64, inputs and
outputs standardised by training-set mean and std (done by ``modeling.pipelines.lifting.LiftingPipeline``).

Deviation: the reference lifts 16 2D joints; here all ``num_joints`` 2D joints of each input frame
are used (the pelvis is informative in full-image pixels).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import LIFTERS
from modeling.arguments import check_dropout


class MaxNormLinear(nn.Linear):
    """``nn.Linear`` whose weight is rescaled to an L2 (Frobenius) norm of at most ``max_norm``; Kaiming-normal
    weights and zero biases, or PyTorch's default initialisation with ``kaiming=False``."""

    def __init__(self, in_features: int, out_features: int, max_norm: Optional[float], kaiming: bool = True):
        super().__init__(in_features, out_features)
        self.max_norm = max_norm
        if kaiming:
            nn.init.kaiming_normal_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.max_norm is not None:
            weight = weight * torch.clamp(self.max_norm / weight.norm().clamp_min(1e-12), max=1.0)
        return F.linear(x, weight, self.bias)


class DenseLayer(nn.Sequential):
    """Linear, batch norm, ReLU, dropout."""

    def __init__(self, width: int, dropout: float, max_norm: Optional[float], in_features: Optional[int] = None,
                 kaiming: bool = True):
        super().__init__(MaxNormLinear(in_features or width, width, max_norm, kaiming), nn.BatchNorm1d(width),
                         nn.ReLU(inplace=True), nn.Dropout(dropout))


class ResidualBlock(nn.Module):
    """x + two ``DenseLayer`` s of x."""

    def __init__(self, width: int, dropout: float, max_norm: Optional[float], kaiming: bool = True):
        super().__init__()
        self.layers = nn.Sequential(DenseLayer(width, dropout, max_norm, kaiming=kaiming),
                                    DenseLayer(width, dropout, max_norm, kaiming=kaiming))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


@LIFTERS.register("linear")
class LinearLifter(nn.Module):
    """(B, in_features) standardised 2D -> (B, out_features) standardised 3D."""

    single_view = True
    inputs = "standardised"

    def __init__(self, in_features: int, out_features: int, hidden: int = 1024, num_blocks: int = 2,
                 dropout: float = 0.5, max_norm: float = 1.0):
        super().__init__()
        check_dropout(dropout)
        if not max_norm >= 0:
            raise ValueError(f"max_norm must be >= 0 (0 = no clipping), got {max_norm!r}")
        max_norm = float(max_norm) or None
        self.input_layer = DenseLayer(hidden, dropout, max_norm, in_features=in_features)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, dropout, max_norm) for _ in range(num_blocks)))
        self.output_layer = MaxNormLinear(hidden, out_features, max_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.blocks(self.input_layer(x)))
