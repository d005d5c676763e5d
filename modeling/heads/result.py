"""What every triangulation head returns (``modeling.heads``: dlt, ransac, algebraic)."""
from typing import NamedTuple

from torch import Tensor


class HeadResult(NamedTuple):
    points_3d: Tensor   # (B, J, 3) world mm; NaN where not valid
    valid: Tensor       # (B, J) bool: the joint was triangulated (>= 2 usable views, in front of them)
    num_views: Tensor   # (B, J) int64: the views of the final solve
    weights: Tensor     # (B, V, J): each view's weight in the final solve (0: not used; ransac: its inliers)
    confidence: Tensor  # (B, V, J): the confidence the head read (dlt, ransac) or learnt (algebraic) per view

    @property
    def used(self) -> Tensor:
        """(B, V, J) bool: the views of the final solve (ransac: the inliers)."""
        return self.weights > 0
