"""The image lifting network of Epipolar Transformers (``modeling/lifting.py``, task ``img_lifting_rot``), after
Boukhayma et al. (CVPR 2019, "3D Hand Shape and Pose from Images in the Wild").

Boukhayma et al. regress, from a ResNet encoder's features of the crop, the parameters of a hand model (MANO pose
and shape) and of the view, and decode them into joints. Epipolar Transformers keeps the encoder and the
separation of pose and view but replaces the hand model by the canonical frame of Zimmermann & Brox: from the
globally average-pooled features of an ImageNet ResNet-50 (``in_features`` = 2048), one linear layer predicts the
pose in its canonical frame (``canonical_3d``, (B, J, 3)) and another an axis-angle vector, whose rotation
(``rotation``, (B, 3, 3), ``core.geometry.rotation.axis_angle_to_matrix``) turns it into the camera frame:
``normalised_3d = canonical_3d @ rotation``, the root-relative pose divided by a bone length. The encoder is the
pipeline's (``modeling.pipelines.image_lifting``); this module is the two heads.

Deviation: Epipolar Transformers appends the one-hot hand side to the features on RHD (and mirrors right hands
with ``LIFTING.FLIP_ON``); no hand side enters here. PyTorch's default initialisation of the linear layers, as
the reference.
"""
from typing import Dict

from torch import Tensor, nn

from core.geometry.rotation import axis_angle_to_matrix
from core.registry import LIFTERS


@LIFTERS.register("image_canonical")
class ImageCanonicalLifter(nn.Module):
    """(B, in_features) pooled image features -> ``canonical_3d`` (B, J, 3), ``rotation`` (B, 3, 3) and
    ``normalised_3d`` (B, J, 3)."""

    inputs = "image_features"
    canonical = True

    def __init__(self, in_features: int, num_joints: int):
        super().__init__()
        self.num_joints = num_joints
        self.pose = nn.Linear(in_features, num_joints * 3)
        self.viewpoint = nn.Linear(in_features, 3)

    def forward(self, features: Tensor) -> Dict[str, Tensor]:
        canonical = self.pose(features).unflatten(-1, (self.num_joints, 3))
        rotation = axis_angle_to_matrix(self.viewpoint(features))
        return {"canonical_3d": canonical, "rotation": rotation, "normalised_3d": canonical @ rotation}
