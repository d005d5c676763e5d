import math

import pytest
import torch
from torch import nn

from modeling.standardizer import Standardizer, load_old_statistics_names


def test_principal_axes_are_orthonormal_and_ordered():
    torch.manual_seed(0)
    data = (torch.randn(500, 3, dtype=torch.float64) * torch.tensor([5.0, 2.0, 1.0], dtype=torch.float64)) @ \
        torch.linalg.qr(torch.randn(34, 3, dtype=torch.float64))[0].T
    coder = Standardizer((17, 2), pca_components=3).double()
    coder.fit(data.view(500, 17, 2) * 10 + 300)
    basis = coder.pca_basis
    assert torch.allclose(basis @ basis.T, torch.eye(3, dtype=torch.float64), atol=1e-9)
    z = ((data.view(500, 17, 2) * 10 + 300 - coder.mean) / coder.std).flatten(1)
    variances = coder(data.view(500, 17, 2) * 10 + 300).var(0)
    assert torch.all(variances[:-1] >= variances[1:])
    assert math.isclose(variances.sum().item(), (z - z.mean(0)).pow(2).sum(1).mean().item() * 500 / 499, rel_tol=1e-6)


def test_statistics_leave_missing_entries_out_and_restore_inverts():
    data = torch.tensor([[1.0, 10.0], [3.0, float("nan")], [5.0, 14.0]], dtype=torch.float64)
    coder = Standardizer((2,)).double()
    coder.fit(data)
    torch.testing.assert_close(coder.mean, torch.tensor([3.0, 12.0], dtype=torch.float64))
    torch.testing.assert_close(coder.std, torch.tensor([2.0, 2.0 * math.sqrt(2.0)], dtype=torch.float64))
    x = torch.tensor([[7.0, 8.0]], dtype=torch.float64)
    torch.testing.assert_close(coder.restore(coder(x)), x)
    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\), got \(3, 3\)"):
        coder.fit(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="pca_components must be in 0..2"):
        Standardizer((2,), pca_components=3)


class _Owner(nn.Module):
    def __init__(self, components):
        super().__init__()
        self.inputs = Standardizer((4,), components)
        load_old_statistics_names(self, {"input_mean": "inputs.mean", "input_std": "inputs.std",
                                         "pca_mean": "inputs.pca_mean", "pca_basis": "inputs.pca_basis"})


@pytest.mark.parametrize("components", [0, 2])
@pytest.mark.parametrize("prefix", ["", "base."])
def test_checkpoints_with_the_owners_old_buffer_names_load(components, prefix):
    """Checkpoints written before the module existed held the statistics as the owner's buffers (and ERD's a
    PCA basis even with PCA off, the identity), also inside another module."""
    old = {"input_mean": torch.arange(4.0), "input_std": torch.full((4,), 2.0), "pca_mean": torch.ones(4),
           "pca_basis": torch.eye(4)[:components or 4]}
    owner, model = _Owner(components), nn.Module()
    model.base = owner
    (model if prefix else owner).load_state_dict({prefix + k: v for k, v in old.items()})
    torch.testing.assert_close(owner.inputs.mean, old["input_mean"])
    torch.testing.assert_close(owner.inputs.std, old["input_std"])
    if components:
        torch.testing.assert_close(owner.inputs.pca_basis, old["pca_basis"])
