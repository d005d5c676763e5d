"""Left-right mirroring of a multi-view scene that keeps its geometry exact (flip augmentation).

Mirroring every image of a calibrated scene about its camera's vertical axis (camera-frame
``x -> -x``, i.e. about the principal point) is the same as looking at the mirrored world
``M X`` (``M = diag(-1, 1, 1)``, world ``x -> -x``) with the mirrored cameras

    R' = F R M,   t' = F t,   K' = K,   dist' = (k1, k2, p1, -p2, k3),   F = diag(-1, 1, 1),

because ``R' (M X) + t' = F (R X + t)``: the mirrored point sits at the mirror image of the original
point in every camera's frame. Radial distortion is even in ``x``; the tangential term is mirrored by
negating ``p2``. So projections through the mirrored cameras are exactly the mirrored pixels
``K F K^-1 p`` (for K without skew: ``x' = 2 c_x - x``), and the views still agree with each other
(triangulation and epipolar geometry stay exact). ``R'`` is a proper rotation (det F = det M = -1).

Names also swap: the left wrist of the mirrored person is the right wrist of the original one
(the skeleton's ``flip_permutation``); ``mirror_joints_*`` apply the swap with the mirroring.

Deviation from VideoPose3D / PoseFormer / ESMformer: they flip normalised screen coordinates about the
image centre and the camera-frame 3D about x = 0, which disagree by twice the principal point's offset
from the image centre (18 to 40 px on Human3.6M's cameras); here both mirror about the principal point.
"""
import torch
from torch import Tensor

from core.geometry.cameras import Cameras
from core.skeleton import Skeleton

_FLIP = (-1.0, 1.0, 1.0)


def _diag(like: Tensor) -> Tensor:
    return torch.diag(like.new_tensor(_FLIP))


def mirror_cameras(cameras: Cameras) -> Cameras:
    """The cameras that see the mirrored world ``M X`` as the mirror images of the original views."""
    flip = _diag(cameras.R)
    dist = cameras.dist * cameras.dist.new_tensor([1.0, 1.0, 1.0, -1.0, 1.0])
    return Cameras(cameras.K, flip @ cameras.R @ flip, cameras.t * cameras.t.new_tensor(_FLIP), dist,
                   cameras.image_size)


def mirror_pixels(pixels: Tensor, cameras: Cameras) -> Tensor:
    """(..., N, 2) pixels of the views of ``cameras`` (batch shape ``...``) -> their mirror images
    ``K F K^-1 p`` (about each camera's principal point, skew and folded-in rotations included)."""
    K = cameras.K.to(pixels.dtype)
    affine = K @ _diag(K) @ torch.linalg.inv(K)                       # ..., 3, 3, last row (0, 0, 1)
    return pixels @ affine[..., :2, :2].transpose(-1, -2) + affine[..., None, :2, 2]


def mirror_world(points: Tensor) -> Tensor:
    """(..., 3) world or camera-frame points -> mirrored about x = 0 (no joint swap)."""
    return points * points.new_tensor(_FLIP)


def swap_left_right(joints: Tensor, skeleton: Skeleton, joint_dim: int = -2) -> Tensor:
    """Swap the left and right joints of ``skeleton`` along ``joint_dim``."""
    if joints.shape[joint_dim] != skeleton.num_joints:
        raise ValueError(f"swap_left_right: expected the {skeleton.num_joints} joints of '{skeleton.name}' along "
                         f"dimension {joint_dim}, got shape {tuple(joints.shape)}")
    index = torch.tensor(skeleton.flip_permutation, device=joints.device)
    return joints.index_select(joint_dim, index)


def mirror_joints_3d(joints: Tensor, skeleton: Skeleton) -> Tensor:
    """(..., J, 3) poses (world or camera frame) -> the mirrored person: x negated, left and right swapped."""
    return swap_left_right(mirror_world(joints), skeleton)


def mirror_joints_2d(joints: Tensor, cameras: Cameras, skeleton: Skeleton) -> Tensor:
    """(..., J, 2) pixel poses in the views of ``cameras`` -> the mirrored person's pixel poses."""
    return swap_left_right(mirror_pixels(joints, cameras), skeleton)
