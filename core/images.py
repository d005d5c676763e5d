"""Image tensors of the batch form: ImageNet-normalised float (V, 3, H, W) from uint8 RGB (V, H, W, 3)."""
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_image_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """(V, H, W, 3) uint8 RGB -> (V, 3, H, W) float32 normalised with the ImageNet mean and std."""
    x = torch.from_numpy(np.ascontiguousarray(images_uint8)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def to_uint8_images(images: torch.Tensor) -> np.ndarray:
    """Inverse of ``to_image_tensor``: (..., 3, H, W) normalised -> (..., H, W, 3) uint8."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    x = (images.float() * std + mean).clamp(0, 1).mul(255).round().byte()
    return x.movedim(-3, -1).cpu().numpy()
