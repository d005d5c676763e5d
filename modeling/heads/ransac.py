"""RANSAC triangulation head: robust to views whose 2D keypoint is a gross outlier.

For every joint, one hypothesis per pair of usable views (all V (V - 1) / 2 pairs, exhaustively:
28 for 8 views), each the DLT of its two views (``core.geometry.triangulation``, undistorted).
A view is an inlier of a hypothesis when the reprojection error of the hypothesis in it (distorted
pixels, ``reprojection_errors``) is below ``inlier_threshold_px``. The hypothesis with the most
inliers wins, ties broken by the lowest total inlier error; the point is then the DLT of its
inliers (weighted by the confidences if ``confidence_weighted``). Everything is batched over
samples, joints and hypotheses; large float64 batches run the hypotheses' DLT and their scoring fused
(``core.geometry.fused``).

With ``undistort`` False every view is taken through its pinhole part (lens distortion ignored, as the
pymvg cameras of Epipolar Transformers). Views are dropped first when their confidence is below
``min_confidence`` (lowered per joint until two views pass with ``fallback_step`` > 0,
``modeling.heads.views``) or their keypoint is not finite. Joints with fewer than two usable views, or
without a hypothesis that at least two views agree with, come out as NaN with ``valid`` False.

Follows the RANSAC baseline of Iskakov et al. (ICCV 2019, ``triangulate_ransac``, threshold 15 px),
except: hypotheses are all pairs instead of random draws, ties are broken by error instead of by
draw order, and there is no final nonlinear (reprojection-error) refinement.
"""
import torch
from torch import Tensor, nn

from core.geometry.cameras import Cameras
from core.geometry import fused
from core.geometry.projection import check_shape, project_points
from core.geometry.triangulation import triangulate_dlt
from core.registry import HEADS
from modeling.heads.result import HeadResult
from modeling.heads.views import check_fallback_step, view_weights


def best_inliers(hypotheses: Tensor, K: Tensor, R: Tensor, t: Tensor, dist: Tensor, keypoints_2d: Tensor,
                 usable: Tensor, threshold_px: float) -> Tensor:
    """The inliers (B, V, J) of each joint's best hypothesis: hypotheses (B, H, J, 3) world points, the cameras'
    K (B, V, 3, 3), R, t, dist, the distorted keypoints (B, V, J, 2) and which are usable (B, V, J). A view is an
    inlier of a hypothesis where its reprojection error is below ``threshold_px``; the most inliers win, ties to the
    lowest total inlier error. One graph (``fused.run`` compiles it for large batches), hence the reprojection of
    ``reprojection_errors`` written on the cameras' tensors rather than called on a ``Cameras``."""
    camera = lambda c: c.unsqueeze(1)  # noqa: E731  (B, 1, V, ...): every hypothesis in every view
    projected = project_points(hypotheses.unsqueeze(2), camera(K), camera(R), camera(t), camera(dist))
    errors = torch.linalg.vector_norm(projected - keypoints_2d.unsqueeze(1), dim=-1)           # (B, H, V, J)
    hypothesis_inliers = (errors < threshold_px) & usable.unsqueeze(1)
    count = hypothesis_inliers.sum(2)                                                         # (B, H, J)
    total_error = torch.where(hypothesis_inliers, errors, torch.zeros_like(errors)).sum(2)
    most = count.amax(dim=1, keepdim=True)
    best = torch.where(count == most, total_error, torch.full_like(total_error, float("inf"))).argmin(1)
    index = best[:, None, None, :].expand(best.shape[0], 1, *usable.shape[1:])
    return hypothesis_inliers.gather(1, index).squeeze(1)


@HEADS.register("ransac")
class RansacHead(nn.Module):
    def __init__(self, inlier_threshold_px: float = 15.0, confidence_weighted: bool = False,
                 min_confidence: float = 0.0, fallback_step: float = 0.0, undistort: bool = True):
        super().__init__()
        if not 0.0 < inlier_threshold_px < float("inf"):
            raise ValueError(f"inlier_threshold_px must be a positive number, got {inlier_threshold_px!r}")
        check_fallback_step(fallback_step)
        self.fallback_step, self.undistort = fallback_step, undistort
        self.inlier_threshold_px = float(inlier_threshold_px)
        self.confidence_weighted = confidence_weighted
        self.min_confidence = min_confidence

    def forward(self, keypoints_2d: Tensor, confidence: Tensor, cameras: Cameras,
                features: Tensor = None) -> HeadResult:
        """keypoints_2d (B,V,J,2) distorted pixels of ``cameras`` (B,V); confidence (B,V,J) -> (B,J,3) mm; the
        result's ``weights`` are non-zero exactly on the inliers (``features`` are not used)."""
        check_shape(keypoints_2d, (-1, -1, -1, 2), "keypoints_2d")
        batch, views, joints = keypoints_2d.shape[-4:-1]
        if keypoints_2d.dim() != 4 or tuple(confidence.shape) != (batch, views, joints) \
                or tuple(cameras.batch_shape) != (batch, views):
            raise ValueError(f"expected keypoints_2d (B, V, J, 2), confidence (B, V, J) and cameras (B, V), got "
                             f"{tuple(keypoints_2d.shape)}, {tuple(confidence.shape)}, {tuple(cameras.batch_shape)}")
        given = confidence
        keypoints_2d, confidence = keypoints_2d.to(cameras.dtype), confidence.to(cameras.dtype)
        cameras = cameras if self.undistort else cameras.pinhole()
        weights = view_weights(confidence, self.confidence_weighted, self.min_confidence, self.fallback_step)
        usable = (weights > 0) & torch.isfinite(weights) & torch.isfinite(keypoints_2d).all(-1)   # (B, V, J)
        undistorted = cameras.undistort_pixels(keypoints_2d)
        P = cameras.projection_matrices

        if views >= 2:
            pairs = torch.combinations(torch.arange(views, device=keypoints_2d.device), 2)             # (H, 2)
            hypotheses = triangulate_dlt(undistorted[:, pairs], P[:, pairs], usable[:, pairs].to(weights.dtype))
            with torch.no_grad():  # the choice of inliers has no gradient; the refit below does
                inliers = fused.run(best_inliers, hypotheses.points_3d.numel() // 3 * views,
                                    hypotheses.points_3d.detach(), cameras.K, cameras.R, cameras.t, cameras.dist,
                                    keypoints_2d.detach(), usable, self.inlier_threshold_px)
        else:
            inliers = torch.zeros_like(usable)
        refit = triangulate_dlt(undistorted, P, torch.where(inliers, weights, torch.zeros_like(weights)))
        inliers = inliers & refit.valid.unsqueeze(1)
        return HeadResult(refit.points_3d, refit.valid, refit.num_views,
                          torch.where(inliers, weights, torch.zeros_like(weights)), given)
