"""Standardisation by training-set statistics, optionally followed by a principal-component code: the inputs and
outputs of Martinez et al.'s lifting pipeline and ERD's 2D features (ERD's ``--pca_input``: a PCA without whitening,
fitted on the z-scored training inputs)."""
from typing import Dict, Sequence, Tuple

import torch
from torch import nn


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


class Standardizer(nn.Module):
    """``(x - mean) / std`` per coordinate of ``shape``, flattened to (B, D), then (with ``pca_components`` > 0) the
    coordinates on the first principal axes of the standardised training data, (B, pca_components).

    ``fit`` takes the statistics from (N, *shape) training data; NaN entries (joints missing from the data) are
    left out of each coordinate's mean and (unbiased) standard deviation. The statistics are buffers, so they
    travel with a checkpoint."""

    def __init__(self, shape: Sequence[int], pca_components: int = 0):
        super().__init__()
        shape = tuple(shape)
        size = int(torch.tensor(shape).prod())
        if not 0 <= pca_components <= size:
            raise ValueError(f"pca_components must be in 0..{size} (the coordinates; 0 = off), got {pca_components}")
        self.shape, self.pca_components = shape, pca_components
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        if pca_components:
            self.register_buffer("pca_mean", torch.zeros(size))
            self.register_buffer("pca_basis", torch.eye(size)[:pca_components])

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> None:
        """Statistics from (N, *shape) training data (and the principal axes of its standardised form)."""
        if tuple(data.shape[1:]) != self.shape:
            raise ValueError(f"Standardizer.fit: data must have shape (N, {', '.join(map(str, self.shape))}), got "
                             f"{tuple(data.shape)}")
        data = data.double()
        present = torch.isfinite(data)
        mean = data.nanmean(0)
        variance = torch.where(present, data - mean, 0.0).pow(2).sum(0) / (present.sum(0) - 1).clamp_min(1)
        self.mean.copy_(mean)
        self.std.copy_(variance.sqrt().clamp_min(1e-6))
        if self.pca_components:
            standardised = ((data - self.mean.double()) / self.std.double()).flatten(1)
            mean, basis = principal_axes(standardised, self.pca_components)
            self.pca_mean.copy_(mean)
            self.pca_basis.copy_(basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> (B, D) standardised, or (B, pca_components) principal components."""
        flat = ((x - self.mean) / self.std).flatten(1)
        return (flat - self.pca_mean) @ self.pca_basis.T if self.pca_components else flat

    def restore(self, z: torch.Tensor) -> torch.Tensor:
        """The inverse of the standardisation (no PCA): (B, *shape) standardised -> (B, *shape)."""
        return z * self.std + self.mean


def load_old_statistics_names(owner: nn.Module, renames: Dict[str, str]) -> None:
    """Let ``owner`` load checkpoints written before it held its statistics in ``Standardizer`` s: ``renames`` maps
    each old buffer name to the new one (e.g. ``{"input_mean": "inputs.mean"}``); an old buffer without a new
    place (a PCA basis stored while PCA was off, the identity) is dropped."""
    def rename(state_dict, prefix, *_):
        own = owner.state_dict().keys()
        for old, new in renames.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                value = state_dict.pop(prefix + old)
                if new in own:
                    state_dict[prefix + new] = value
    owner._register_load_state_dict_pre_hook(rename)
