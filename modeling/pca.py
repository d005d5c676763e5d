"""Principal component coding of standardised 2D keypoints, as ERD's ``--pca_input`` (a PCA without
whitening, fitted on the z-scored training inputs): used for the linear lifter's input and the ERD
stages' features."""
from typing import Tuple

import torch


@torch.no_grad()
def principal_axes(data: torch.Tensor, components: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, D) samples -> their mean (D,) and the first ``components`` principal axes (components, D), the
    direction of largest variance first (float64)."""
    if data.dim() != 2 or not 1 <= components <= data.shape[1] or len(data) < 2:
        raise ValueError(f"a PCA of {components} components needs (N >= 2, D >= {components}) samples, got "
                         f"{tuple(data.shape)}")
    data = data.double()
    mean = data.mean(0)
    _, eigenvectors = torch.linalg.eigh(torch.cov((data - mean).T))
    return mean, eigenvectors.flip(-1).T[:components].contiguous()
