"""PoseFormer (Zheng et al., "3D Human Pose Estimation with Spatial and Temporal Transformers", ICCV 2021).

A window of F frames of 2D joints (B, F, J, 2) -> the centre frame's root-relative 3D pose (B, J, 3):

- spatial transformer, per frame: each joint's 2D is embedded to ``embed_dim_ratio`` (32) channels,
  a learned joint position embedding is added, then ``depth`` (4) pre-norm transformer blocks
  (``num_heads`` 8, MLP ratio 2, GELU) attend over the J joints, and a layer norm follows;
- temporal transformer: the J x 32 = 544 features of each frame form one token, a learned frame
  position embedding is added, ``depth`` blocks attend over the F frames, a layer norm follows;
- a learned weighted mean over frames (a 1x1 convolution with the frames as channels) and a head
  (layer norm, linear 544 -> 3 J).

Sizes follow the reference code (github.com/zczcwh/PoseFormer, ``model_poseformer.py``): layer norms
with eps 1e-6 except the head's (1e-5), zero-initialised position embeddings, PyTorch's default
initialisation of the linear layers, stochastic depth rising linearly from 0 to ``drop_path_rate``
over the blocks of each transformer (0.1 in the reference training, 0 at test), no dropout. About
9.6 M parameters at 81 frames. Training in the reference: AdamW (weight decay 0.1), the learning rate
multiplied by 0.99 every epoch, MPJPE loss on root-relative camera-frame 3D, 2D in normalised screen
coordinates, flip augmentation and flip test-time averaging.

Registered as ``MODEL.LIFTER.NAME poseformer``; ``modeling.pipelines.screen_lifting.ScreenLiftingPipeline`` feeds it
(normalised screen coordinates, MPJPE loss, flip test-time averaging) and ``DATASETS.FLIP`` mirrors
training samples.
"""
import torch
from torch import Tensor, nn

from core.registry import LIFTERS
from modeling.lifters.transformer import transformer_blocks


@LIFTERS.register("poseformer")
class PoseFormer(nn.Module):
    """(B, F, J, 2) normalised 2D -> (B, J, 3) root-relative 3D of the centre frame (see the module docstring)."""

    single_view = True
    inputs = "screen"

    def __init__(self, num_frames: int = 81, num_joints: int = 17, embed_dim_ratio: int = 32, depth: int = 4,
                 num_heads: int = 8, mlp_ratio: float = 2.0, drop_path_rate: float = 0.1):
        super().__init__()
        for name, value in (("num_frames", num_frames), ("num_joints", num_joints),
                            ("embed_dim_ratio", embed_dim_ratio), ("depth", depth), ("num_heads", num_heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PoseFormer: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"PoseFormer: drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        self.num_frames, self.num_joints = num_frames, num_joints
        embed_dim = embed_dim_ratio * num_joints
        self.joint_embedding = nn.Linear(2, embed_dim_ratio)
        self.joint_position = nn.Parameter(torch.zeros(1, num_joints, embed_dim_ratio))
        self.spatial_blocks = transformer_blocks(embed_dim_ratio, depth, num_heads, mlp_ratio, drop_path_rate)
        self.spatial_norm = nn.LayerNorm(embed_dim_ratio, eps=1e-6)
        self.frame_position = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.temporal_blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate)
        self.temporal_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.frame_weights = nn.Conv1d(num_frames, 1, kernel_size=1)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_joints * 3))

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        if keypoints_2d.dim() != 4 or keypoints_2d.shape[1:] != (self.num_frames, self.num_joints, 2):
            raise ValueError(f"PoseFormer: expected 2D keypoints (B, {self.num_frames}, {self.num_joints}, 2), got "
                             f"{tuple(keypoints_2d.shape)}")
        batch = keypoints_2d.shape[0]
        x = self.joint_embedding(keypoints_2d.flatten(0, 1)) + self.joint_position          # (B F, J, 32)
        x = self.spatial_norm(self.spatial_blocks(x))
        x = x.reshape(batch, self.num_frames, -1) + self.frame_position                    # (B, F, J 32)
        x = self.temporal_norm(self.temporal_blocks(x))
        x = self.frame_weights(x)                                                           # (B, 1, J 32)
        return self.head(x).reshape(batch, self.num_joints, 3)
