"""The 3D targets and 2D input coordinates that several pipelines share."""
import torch

from core.sample_schema import centre_frame


def root_relative_camera_targets(batch, root: int) -> torch.Tensor:
    """(B, J, 3) mm: the centre frame's 3D in the camera frame of the sample's single view, the root joint at 0."""
    cameras = batch["cameras"]
    target_cam = cameras.world_to_camera(centre_frame(batch["keypoints_3d"])[:, None].to(cameras.dtype))[:, 0]
    return (target_cam - target_cam[:, root:root + 1]).float()


def normalised_screen_coordinates(keypoints_2d: torch.Tensor, cameras) -> torch.Tensor:
    """(B, T, V, J, 2) pixels of the views of ``cameras`` (B, V) -> ``x / w * 2 - (1, h / w)``: [-1, 1] across
    each image's width, the aspect ratio kept (VideoPose3D's ``normalize_screen_coordinates``)."""
    size = cameras.image_size.to(keypoints_2d.dtype)[:, None, :, None]          # B, 1, V, 1, 2 (w, h)
    width = size[..., :1]
    return keypoints_2d / width * 2 - torch.cat([torch.ones_like(width), size[..., 1:] / width], -1)


def root_relative_world_targets(batch, root: int) -> torch.Tensor:
    """(B, T, J, 3) mm: every window frame's world 3D, the root joint at 0."""
    points = batch["keypoints_3d"].float()
    return points - points[..., root:root + 1, :]
