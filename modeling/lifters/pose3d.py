"""The single-view lifter of Bouazizi et al., "Self-Supervised 3D Human Pose Estimation with Multiple-View
Geometry" (FG 2021), reference code github.com/vru2020/Pose_3D (``model.py``).

An encoder (linear 2 x 16 -> 1024, batch norm, ReLU, dropout 0.5, two residual blocks of two such
1024-unit layers, linear to a 1024-dimensional latent code) and a decoder (linear latent -> 1024, batch
norm, ReLU, dropout, two residual blocks, linear to 3 x 16): the root-relative 2D of the 16 non-root
joints in pixels (no standardisation, as in the reference) to their root-relative 3D in the camera
frame, mm. PyTorch's default initialisation, no weight clipping (unlike Martinez et al.). About 10.6 M
parameters.

It is trained without 3D labels by ``modeling.pipelines.multiview_consistency.MultiViewConsistencyPipeline`` (its
docstring lists the losses and the fixes to the reference training code) and tested on single views.
"""
from torch import Tensor, nn

from core.registry import LIFTERS
from modeling.arguments import check_dropout
from modeling.lifters.linear import DenseLayer, ResidualBlock


@LIFTERS.register("pose3d")
class Pose3DLifter(nn.Module):
    """(B, J - 1, 2) root-relative pixels -> (B, J - 1, 3) root-relative camera-frame mm."""

    single_view = True
    inputs = "root_relative_pixels"

    def __init__(self, num_joints: int = 17, hidden: int = 1024, latent: int = 1024, num_blocks: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        check_dropout(dropout)
        self.num_joints = num_joints
        inputs, outputs = 2 * (num_joints - 1), 3 * (num_joints - 1)
        self.encoder = nn.Sequential(DenseLayer(hidden, dropout, None, in_features=inputs, kaiming=False),
                                     *(ResidualBlock(hidden, dropout, None, kaiming=False) for _ in range(num_blocks)),
                                     nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(DenseLayer(hidden, dropout, None, in_features=latent, kaiming=False),
                                     *(ResidualBlock(hidden, dropout, None, kaiming=False) for _ in range(num_blocks)),
                                     nn.Linear(hidden, outputs))

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        if keypoints_2d.dim() != 3 or keypoints_2d.shape[1:] != (self.num_joints - 1, 2):
            raise ValueError(f"Pose3DLifter: expected root-relative 2D (B, {self.num_joints - 1}, 2), got "
                             f"{tuple(keypoints_2d.shape)}")
        return self.decoder(self.encoder(keypoints_2d.flatten(1))).view(len(keypoints_2d), -1, 3)
