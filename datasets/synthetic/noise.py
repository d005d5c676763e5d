"""Detector-like noise for exact 2D keypoints of the synthetic world.

Turns exact keypoints (T, V, J, 2) into what a 2D pose detector would report, with confidences:

- Gaussian jitter, temporally correlated along T as a stationary AR(1) process
  ``e_t = rho * e_{t-1} + sqrt(1 - rho^2) * w_t`` (``e_0 = w_0``, so every frame has variance
  ``jitter_std_px^2`` and lag-1 autocorrelation ``rho``), ``occluded_jitter_scale`` times larger
  for occluded joints;
- outliers: with ``outlier_prob`` per joint and frame, an extra N(0, outlier_std_px^2) offset;
- left/right swaps: with ``swap_prob`` per view and frame, the whole skeleton of that view is
  reported with left and right exchanged (``core.skeleton.H36M17.flip_permutation``, or the ``flip`` permutation
  of another keypoint layout);
- confidences in [0, 1]: ``confidence_visible`` / ``confidence_occluded`` by the visibility of the
  joint actually reported, multiplied by ``confidence_swap_scale`` for swapped left/right joints,
  capped at ``confidence_outlier`` for outliers, plus N(0, confidence_noise_std^2), clipped. So a
  confidence-weighted triangulation can discount the worst observations.

Units: pixels by default. With ``reference_bbox_px`` set, both standard deviations scale with the
person's size: they are the pixel values for a person whose 2D box (max of width and height of the
exact keypoints in that frame and view) measures ``reference_bbox_px`` pixels.

The AR(1) filter is exact and vectorised: a log-depth prefix scan (Hillis-Steele), i.e. a loop of
ceil(log2 T) numpy steps over the whole array, not a loop over frames.
"""
from dataclasses import dataclass, fields
from typing import Optional, Sequence, Tuple

import numpy as np

from core.skeleton import H36M17


@dataclass(frozen=True)
class DetectorNoise:
    jitter_std_px: float = 2.0
    temporal_correlation: float = 0.0
    occluded_jitter_scale: float = 3.0
    outlier_prob: float = 0.0
    outlier_std_px: float = 40.0
    swap_prob: float = 0.0
    reference_bbox_px: Optional[float] = None
    confidence_visible: float = 0.9
    confidence_occluded: float = 0.4
    confidence_outlier: float = 0.15
    confidence_swap_scale: float = 0.6
    confidence_noise_std: float = 0.05

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not np.isfinite(value):
                raise ValueError(f"DetectorNoise.{f.name} must be finite, got {value}")
        for name in ("jitter_std_px", "occluded_jitter_scale", "outlier_std_px", "confidence_noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"DetectorNoise.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("outlier_prob", "swap_prob", "confidence_visible", "confidence_occluded",
                     "confidence_outlier", "confidence_swap_scale"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DetectorNoise.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.temporal_correlation < 1.0:
            raise ValueError(f"DetectorNoise.temporal_correlation must be in [0, 1), got {self.temporal_correlation}")
        if self.reference_bbox_px is not None and self.reference_bbox_px <= 0:
            raise ValueError(f"DetectorNoise.reference_bbox_px must be > 0 or None, got {self.reference_bbox_px}")

    @classmethod
    def none(cls) -> "DetectorNoise":
        """No noise: exact 2D keypoints with confidence 1 everywhere (occluded joints included)."""
        return cls(jitter_std_px=0.0, outlier_prob=0.0, swap_prob=0.0, confidence_visible=1.0,
                   confidence_occluded=1.0, confidence_noise_std=0.0)


def ar1_standard_noise(rng: np.random.Generator, shape: Tuple[int, ...], rho: float) -> np.ndarray:
    """Stationary AR(1) noise along axis 0 with unit variance and lag-1 autocorrelation ``rho``.

    ``e_0 = w_0`` and ``e_t = rho * e_{t-1} + sqrt(1 - rho^2) * w_t`` with w ~ N(0, 1) i.i.d.,
    computed as ``e_t = sum_s rho^(t - s) b_s`` by a log-depth prefix scan (exact, stable).
    """
    noise = rng.standard_normal(shape)
    if rho == 0.0 or shape[0] < 2:
        return noise
    noise[1:] *= np.sqrt(1.0 - rho * rho)
    shift, decay = 1, rho
    while shift < shape[0]:  # after this step each e_t sums the last 2 * shift innovations
        noise[shift:] += decay * noise[:-shift]  # the right side is evaluated before the update
        shift, decay = 2 * shift, decay * decay
    return noise


def apply_detector_noise(keypoints_2d, visible, noise: DetectorNoise, rng: np.random.Generator,
                         flip: Sequence[int] = H36M17.flip_permutation) -> Tuple[np.ndarray, np.ndarray]:
    """Detector-like 2D keypoints and confidences from exact ones.

    Args:
        keypoints_2d: (T, V, J, 2) exact pixels (float array; the result keeps its float dtype).
        visible: (T, V, J) bool, True where the joint is not occluded.
        noise: the noise model.
        rng: the source of randomness (same state, same result).
        flip: the keypoints' left/right permutation, for swaps (default: the Human3.6M 17 joints').

    Returns:
        noisy (T, V, J, 2) pixels and confidence (T, V, J) in [0, 1], float of the same dtype.
    """
    keypoints_2d = np.asarray(keypoints_2d)
    visible = np.asarray(visible)
    if keypoints_2d.ndim != 4 or keypoints_2d.shape[-1] != 2:
        raise ValueError(f"keypoints_2d must have shape (T, V, J, 2), got {keypoints_2d.shape}")
    dtype = keypoints_2d.dtype if keypoints_2d.dtype.kind == "f" else np.dtype(np.float64)
    keypoints_2d = keypoints_2d.astype(dtype, copy=False)
    if not np.isfinite(keypoints_2d).all():
        raise ValueError("keypoints_2d contains NaN or infinite values")
    if visible.shape != keypoints_2d.shape[:3] or visible.dtype != np.bool_:
        raise ValueError(f"visible must be a bool array of shape (T, V, J) = {keypoints_2d.shape[:3]}, got "
                         f"{visible.dtype} {visible.shape}")
    if not isinstance(noise, DetectorNoise):
        raise TypeError(f"noise must be a DetectorNoise, got {type(noise).__name__}")
    num_frames, num_views, num_joints, _ = keypoints_2d.shape

    # Left/right swaps of whole views: the detector reports joint H36M17.flip_permutation[j] as j.
    swapped = np.zeros(visible.shape, dtype=bool)
    if noise.swap_prob > 0:
        if num_joints != len(flip):
            raise ValueError(f"swap_prob > 0 needs one left/right partner per keypoint: a flip permutation of "
                             f"{len(flip)} keypoints for J = {num_joints}")
        flip = np.asarray(flip)
        swapped_view = rng.random((num_frames, num_views)) < noise.swap_prob
        keypoints_2d = np.where(swapped_view[..., None, None], keypoints_2d[:, :, flip], keypoints_2d)
        visible = np.where(swapped_view[..., None], visible[:, :, flip], visible)
        swapped = swapped_view[..., None] & (flip != np.arange(num_joints))

    scale = np.ones((num_frames, num_views, 1), dtype=dtype)
    if noise.reference_bbox_px is not None:
        box = keypoints_2d.max(axis=2) - keypoints_2d.min(axis=2)  # (T, V, 2)
        scale = box.max(axis=-1, keepdims=True) / noise.reference_bbox_px

    noisy = keypoints_2d.copy()
    if noise.jitter_std_px > 0:
        std = noise.jitter_std_px * scale * np.where(visible, 1.0, noise.occluded_jitter_scale)  # (T, V, J)
        jitter = ar1_standard_noise(rng, keypoints_2d.shape, noise.temporal_correlation)
        noisy += (jitter * std[..., None]).astype(dtype)

    outlier = np.zeros(visible.shape, dtype=bool)
    if noise.outlier_prob > 0:
        outlier = rng.random(visible.shape) < noise.outlier_prob
        offset = rng.standard_normal(keypoints_2d.shape) * (noise.outlier_std_px * scale)[..., None]
        noisy += np.where(outlier[..., None], offset, 0.0).astype(dtype)

    confidence = np.where(visible, noise.confidence_visible, noise.confidence_occluded)
    confidence = np.where(swapped, confidence * noise.confidence_swap_scale, confidence)
    confidence = np.where(outlier, np.minimum(confidence, noise.confidence_outlier), confidence)
    if noise.confidence_noise_std > 0:
        confidence = confidence + noise.confidence_noise_std * rng.standard_normal(confidence.shape)
    return noisy, np.clip(confidence, 0.0, 1.0).astype(dtype)
