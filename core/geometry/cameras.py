"""The ``Cameras`` structure: a batch of calibrated pinhole cameras with lens distortion.

Conventions (used everywhere in EpiPose):

- world frame: millimetres, z up;
- ``X_cam = R @ X_world + t``: ``R`` (..., 3, 3) rotates world to camera, ``t`` (..., 3) in mm;
- camera axes as in OpenCV: x right, y down, z forward (depth);
- ``K`` (..., 3, 3) maps distorted normalised coordinates to pixels; its last row is (0, 0, 1), and
  it may carry skew or rotation once a crop / resize / rotation affine has been folded in;
- ``dist`` (..., 5): k1, k2, p1, p2, k3 (OpenCV order), applied to normalised coordinates before K;
- ``image_size`` (..., 2): width, height in pixels of the image that K maps into.

Every field shares the same leading batch shape (e.g. B, V). The projection and undistortion
methods forward to the pure functions of ``core.geometry.projection``.
"""
from dataclasses import dataclass, fields
from typing import Optional, Sequence

import torch
from torch import Tensor

from core.geometry import projection

_TRAILING = {"K": (3, 3), "R": (3, 3), "t": (3,), "dist": (5,), "image_size": (2,)}


@dataclass(frozen=True)
class Cameras:
    K: Tensor
    R: Tensor
    t: Tensor
    dist: Tensor
    image_size: Tensor

    def __post_init__(self):
        batch = None
        for f in fields(self):
            value = getattr(self, f.name)
            trailing = _TRAILING[f.name]
            if not isinstance(value, Tensor):
                raise TypeError(f"Cameras.{f.name} must be a torch.Tensor, got {type(value).__name__}")
            if tuple(value.shape[value.dim() - len(trailing):]) != trailing or value.dim() < len(trailing):
                raise ValueError(f"Cameras.{f.name} must have shape (..., {', '.join(map(str, trailing))}), "
                                 f"got {tuple(value.shape)}")
            lead = value.shape[:value.dim() - len(trailing)]
            if batch is None:
                batch = lead
            elif lead != batch:
                raise ValueError(f"Cameras.{f.name} has batch shape {tuple(lead)}, expected {tuple(batch)} "
                                 "like Cameras.K")
        values = [getattr(self, f.name) for f in fields(self)]
        if len({v.device for v in values}) > 1 or len({v.dtype for v in values}) > 1:
            raise ValueError("Cameras fields must share one device and dtype, got "
                             + ", ".join(f"{f.name} {v.dtype} on {v.device}" for f, v in zip(fields(self), values)))

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def create(cls, K, R, t, dist=None, image_size=None, dtype=torch.float64) -> "Cameras":
        """Build from array-likes; ``dist`` defaults to zeros, ``image_size`` to twice the principal point."""
        K = torch.as_tensor(K, dtype=dtype)
        R = torch.as_tensor(R, dtype=dtype)
        t = torch.as_tensor(t, dtype=dtype).reshape(*R.shape[:-2], 3)
        dist = torch.zeros(*K.shape[:-2], 5, dtype=dtype) if dist is None else torch.as_tensor(dist, dtype=dtype)
        if dist.shape[-1] < 5:  # k1, k2, p1, p2 given without k3
            dist = torch.cat([dist, dist.new_zeros(*dist.shape[:-1], 5 - dist.shape[-1])], dim=-1)
        if image_size is None:
            image_size = 2.0 * K[..., :2, 2]
        image_size = torch.as_tensor(image_size, dtype=dtype).expand(*K.shape[:-2], 2)
        return cls(K, R, t, dist, image_size.clone())

    @staticmethod
    def stack(cameras: Sequence["Cameras"], dim: int = 0) -> "Cameras":
        return Cameras(*(torch.stack([getattr(c, f.name) for c in cameras], dim=dim) for f in fields(Cameras)))

    @staticmethod
    def cat(cameras: Sequence["Cameras"], dim: int = 0) -> "Cameras":
        return Cameras(*(torch.cat([getattr(c, f.name) for c in cameras], dim=dim) for f in fields(Cameras)))

    def _map(self, fn) -> "Cameras":
        """Apply ``fn(field_tensor, number_of_trailing_dims)`` to every field."""
        return Cameras(*(fn(getattr(self, f.name), len(_TRAILING[f.name])) for f in fields(self)))

    # ----- batch handling ---------------------------------------------------------------------
    @property
    def batch_shape(self) -> torch.Size:
        return self.K.shape[:-2]

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    @property
    def device(self) -> torch.device:
        return self.K.device

    def __len__(self) -> int:
        return self.batch_shape[0]

    def __getitem__(self, index) -> "Cameras":
        """Index the batch dimensions only (``cams[0]``, ``cams[:, 1]``, ``cams[..., 2]``, masks)."""
        index = index if isinstance(index, tuple) else (index,)
        return self._map(lambda x, n: x[(*index, *(slice(None),) * n)])

    def reshape(self, *shape) -> "Cameras":
        return self._map(lambda x, n: x.reshape(*shape, *x.shape[x.dim() - n:]))

    def unsqueeze(self, dim: int) -> "Cameras":
        if dim < 0:
            dim += len(self.batch_shape) + 1
        return self._map(lambda x, _: x.unsqueeze(dim))

    def expand(self, *shape) -> "Cameras":
        return self._map(lambda x, n: x.expand(*shape, *x.shape[x.dim() - n:]))

    def to(self, device=None, dtype: Optional[torch.dtype] = None, non_blocking: bool = False) -> "Cameras":
        return self._map(lambda x, _: x.to(device=device, dtype=dtype, non_blocking=non_blocking))

    def pin_memory(self) -> "Cameras":
        return self._map(lambda x, _: x.pin_memory())

    # ----- derived quantities -----------------------------------------------------------------
    @property
    def centers(self) -> Tensor:
        """Camera centres in world coordinates (..., 3), mm."""
        return -(self.R.transpose(-1, -2) @ self.t.unsqueeze(-1)).squeeze(-1)

    @property
    def projection_matrices(self) -> Tensor:
        """P = K [R | t] (..., 3, 4): maps world points to *undistorted* pixels."""
        return self.K @ torch.cat([self.R, self.t.unsqueeze(-1)], dim=-1)

    @property
    def focal_lengths(self) -> Tensor:
        """(..., 2) fx, fy in pixels (the column norms of K's 2x2 block, so valid after rotations)."""
        return self.K[..., :2, :2].norm(dim=-2)

    def with_affine(self, affine: Tensor, image_size) -> "Cameras":
        """Fold a pixel-space affine (crop, resize, rotation, flip-free) into K.

        ``affine`` (..., 2, 3) or (..., 3, 3) maps pixels of the current image to pixels of the
        new image of size ``image_size`` (w, h). Distortion is unchanged, because it acts on
        normalised coordinates before K.
        """
        affine = torch.as_tensor(affine, dtype=self.dtype, device=self.device)
        if affine.shape[-2:] == (2, 3):
            bottom = affine.new_tensor([0.0, 0.0, 1.0]).expand(*affine.shape[:-2], 1, 3)
            affine = torch.cat([affine, bottom], dim=-2)
        if affine.shape[-2:] != (3, 3):
            raise ValueError(f"affine must have shape (..., 2, 3) or (..., 3, 3), got {tuple(affine.shape)}")
        size = torch.as_tensor(image_size, dtype=self.dtype, device=self.device).expand(*self.batch_shape, 2)
        return Cameras(affine @ self.K, self.R, self.t, self.dist, size.clone())

    def pinhole(self) -> "Cameras":
        """The same cameras without lens distortion (their K, R, t and image size)."""
        return Cameras(self.K, self.R, self.t, torch.zeros_like(self.dist), self.image_size)

    def for_feature_map(self, stride: float, size) -> "Cameras":
        """Cameras of a feature map (or heatmap) of ``size`` (w, h) computed with ``stride`` from this image.

        Pixel centres are at integer coordinates in both; feature pixel j covers image pixels
        ``stride * j ... stride * j + stride - 1``, so ``x_feature = (x_image + 0.5) / stride - 0.5``.
        """
        if not stride > 0:
            raise ValueError(f"for_feature_map: stride must be positive, got {stride!r}")
        offset = 0.5 / stride - 0.5
        affine = torch.tensor([[1 / stride, 0.0, offset], [0.0, 1 / stride, offset]], dtype=self.dtype,
                              device=self.device)
        return self.with_affine(affine.expand(*self.batch_shape, 2, 3), size)

    # ----- geometry (see core.geometry.projection) --------------------------------------------
    def world_to_camera(self, points_world: Tensor) -> Tensor:
        """(..., N, 3) world mm -> (..., N, 3) camera frame mm."""
        return projection.world_to_camera(points_world, self.R, self.t)

    def camera_to_world(self, points_cam: Tensor) -> Tensor:
        return projection.camera_to_world(points_cam, self.R, self.t)

    def project(self, points_world: Tensor) -> Tensor:
        """(..., N, 3) world mm -> (..., N, 2) distorted pixels."""
        return projection.project_points(points_world, self.K, self.R, self.t, self.dist)

    def undistort_pixels(self, pixels: Tensor) -> Tensor:
        """(..., N, 2) distorted pixels -> (..., N, 2) undistorted pixels (same K)."""
        return projection.undistort_pixels(pixels, self.K, self.dist)
