"""Explicit residual descent (ERD; Kang et al., BMVC 2020): refine any single-view lifter's root-relative 3D
by K small regressors, each adding a residual computed from how the current estimate re-projects.

Stage k sees a feature of the current estimate X_k (root-relative, camera frame, mm) placed at the root
position r, projected with the camera (pi) and compared with the input 2D u, both z-scored with the
per-joint statistics of the training inputs (mu, s):

- ``delta``: (u - pi(X_k + r)) / s, ERD's default ("Residual");
- ``proj``: (pi(X_k + r) - mu) / s ("Proj2D");
- ``cat``: the z-scored input and ``delta``, side by side;

optionally coded by the first ``pca_components`` principal components of the z-scored training inputs
(ERD's ``--pca_input``). X_{k+1} = X_k + stage_k(feature), a plain sum in mm. A stage is Linear to 256,
batch norm, ReLU, dropout 0.25, two purely linear residual blocks y + dropout(Linear(y)) (no norm or
activation, as ERD's ``RegressDeltaModule``) and a linear output; every stage has its own weights.

Training (``modeling.pipelines.refined.RefinedPipeline``) is greedy, as ERD's: the lifter is frozen, stage k is
trained alone for ``epochs_per_stage`` epochs on the MSE (mm^2) of the cumulative estimate, the stages
before it frozen in eval mode. The root r is the true pelvis in the camera frame (``root='gt'``, the
protocol of every number ERD reports; where the data lacks the pelvis, NaN, the least-squares root stands
in) or the least-squares translation that best re-projects the lifted pose onto the undistorted input 2D
(``root='least_squares'``, ERD's ``--optim_pelvis``), which needs no 3D ground truth at test time; with
``update_root`` (ERD's ``--update_pelvis``) it is solved again for the current estimate before every stage
after the first.

Deviations from the reference code, each deliberate:

- The number of stages used at test time is chosen on a validation split (``DATASETS.VAL_SUBJECTS``:
  the best epoch's checkpoint keeps the stages trained up to it), not on the test set as ERD's code does.
- Each stage's output layer starts at zero, so a newly started stage leaves the estimate unchanged
  (PyTorch's default initialisation adds a small random offset).
- The projection is the full camera model with lens distortion (``core.geometry.Cameras``); ERD projects
  with the intrinsic matrix alone.
- The loss and the output leave out the root (the pelvis), which is 0 by construction (ERD regresses all 17 joints).
- Joints whose re-projection is undefined (behind the camera, only possible with a least-squares root)
  give a zero feature.
"""
from typing import Optional

import torch
from torch import nn

from core.geometry.projection import pixels_to_normalized, undistort
from core.missing_joints import present_joints
from core.registry import REFINERS
from core.skeleton import Skeleton
from modeling.arguments import check_dropout
from modeling.standardizer import Standardizer, load_old_statistics_names

FEATURES = ("delta", "proj", "cat")
ROOTS = ("gt", "least_squares")


class ResidualStage(nn.Sequential):
    """One refinement stage: (B, in_features) -> (B, out_features) mm."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 256, num_blocks: int = 2,
                 dropout: float = 0.25):
        output = nn.Linear(hidden, out_features)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        super().__init__(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), *(LinearResidual(hidden, dropout) for _ in range(num_blocks)), output)


class LinearResidual(nn.Module):
    """y + dropout(Linear(y))."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.linear, self.dropout = nn.Linear(width, width), nn.Dropout(dropout)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.dropout(self.linear(y))


def least_squares_root(pose_rel: torch.Tensor, keypoints_2d: torch.Tensor, cameras) -> torch.Tensor:
    """(B, J, 3) root-relative camera-frame mm and (B, J, 2) distorted pixels -> (B, 3) the camera-frame root
    position T minimising the pinhole residuals x_n (Z + T_z) - (X + T_x) (and y) over all joints, with x_n
    the undistorted normalised input coordinates (linear least squares, batched)."""
    normalised = undistort(pixels_to_normalized(keypoints_2d.to(cameras.dtype), cameras.K), cameras.dist)
    pose = pose_rel.to(cameras.dtype)
    ones, zeros = torch.ones_like(normalised[..., 0]), torch.zeros_like(normalised[..., 0])
    rows_x = torch.stack([ones, zeros, -normalised[..., 0]], -1)               # B, J, 3
    rows_y = torch.stack([zeros, ones, -normalised[..., 1]], -1)
    a = torch.cat([rows_x, rows_y], 1)                                          # B, 2J, 3
    b = torch.cat([normalised[..., 0] * pose[..., 2] - pose[..., 0],
                   normalised[..., 1] * pose[..., 2] - pose[..., 1]], 1)        # B, 2J
    normal = a.transpose(1, 2) @ a
    return torch.linalg.solve(normal, (a.transpose(1, 2) @ b.unsqueeze(-1))).squeeze(-1).to(pose_rel.dtype)


@REFINERS.register("erd")
class ResidualDescent(nn.Module):
    """K residual stages on re-projection features; ``num_active`` (a buffer, saved in checkpoints) says how many
    are in use: set by ``start_stage`` during training, so the best validated checkpoint keeps its count."""

    def __init__(self, skeleton: Skeleton, num_stages: int = 10, hidden: int = 256, num_blocks: int = 2,
                 dropout: float = 0.25, features: str = "delta", pca_components: int = 0, root: str = "gt",
                 update_root: bool = False):
        super().__init__()
        check_dropout(dropout)
        if features not in FEATURES or root not in ROOTS or num_stages < 1:
            raise ValueError(f"features must be one of {', '.join(FEATURES)}, root one of {', '.join(ROOTS)} and "
                             f"stages >= 1; got '{features}', '{root}', {num_stages}")
        if update_root and root != "least_squares":
            raise ValueError(f"update_root re-solves the least-squares root after every stage: it needs root "
                             f"'least_squares', got '{root}'")
        self.features, self.root, self.update_root = features, root, update_root
        num_joints = skeleton.num_joints
        code = pca_components or 2 * num_joints
        in_features = 2 * code if features == "cat" else code
        out_features = (num_joints - 1) * 3
        self.stages = nn.ModuleList(ResidualStage(in_features, out_features, hidden, num_blocks, dropout)
                                    for _ in range(num_stages))
        self.inputs = Standardizer((num_joints, 2), pca_components)
        load_old_statistics_names(self, {"input_mean": "inputs.mean", "input_std": "inputs.std",
                                         "pca_mean": "inputs.pca_mean", "pca_basis": "inputs.pca_basis"})
        self.register_buffer("num_active", torch.tensor(1))
        self.register_buffer("non_root", torch.tensor(skeleton.non_root_joints()), persistent=False)

    @torch.no_grad()
    def fit(self, keypoints_2d: torch.Tensor) -> None:
        """Input statistics (and the PCA basis) from (N, J, 2) training 2D, pixels."""
        self.inputs.fit(keypoints_2d)

    def start_stage(self, stage: int) -> None:
        """Train stage ``stage`` (0-based) next: it and every stage before it are in use."""
        self.num_active.fill_(min(stage, len(self.stages) - 1) + 1)

    @property
    def active(self) -> int:
        return int(self.num_active)

    def train(self, mode: bool = True):
        """Only the last active stage trains; the stages before it stay in eval mode (frozen batch norm)."""
        super().train(mode)
        for stage in self.stages[:self.active - 1]:
            stage.eval()
        return self

    def _feature(self, pose_rel, root, input_code, cameras) -> torch.Tensor:
        points_cam = (pose_rel + root[:, None]).to(cameras.dtype)
        projected = cameras.project(cameras.camera_to_world(points_cam)).to(pose_rel.dtype)
        # a joint that does not project (behind the camera) codes as the mean input
        proj_code = self.inputs(torch.where(torch.isfinite(projected), projected, self.inputs.mean))
        if self.features == "proj":
            return proj_code
        delta = input_code - proj_code
        return torch.cat([input_code, delta], 1) if self.features == "cat" else delta

    def forward(self, pose_rel: torch.Tensor, keypoints_2d: torch.Tensor, cameras,
                root_true: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, J, 3) root-relative camera-frame mm (pelvis at 0), (B, J, 2) input pixels, ``cameras`` (B,) and, for
        ``root='gt'``, the true (B, 3) camera-frame pelvis -> the refined (B, J, 3) pose, pelvis at 0."""
        keypoints_2d = keypoints_2d.to(pose_rel.dtype)
        if self.root == "gt":
            if root_true is None:
                raise ValueError("ERD with root 'gt' needs the true pelvis position")
            root = root_true.to(pose_rel.dtype)
            missing = ~present_joints(root)[:, None]                  # a pelvis missing from the data
            if missing.any():
                root = torch.where(missing, least_squares_root(pose_rel, keypoints_2d, cameras), root)
        else:
            root = least_squares_root(pose_rel, keypoints_2d, cameras)
        pose, input_code = pose_rel, self.inputs(keypoints_2d)
        for k, stage in enumerate(self.stages[:self.active]):
            if k and self.update_root:
                root = least_squares_root(pose, keypoints_2d, cameras)
            trains = self.training and k == self.active - 1
            with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
                step = stage(self._feature(pose, root, input_code, cameras))
            pose = pose.index_add(1, self.non_root, step.view(len(step), -1, 3))
        return pose
