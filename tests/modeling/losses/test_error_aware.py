import math

import pytest
import torch

from modeling.losses.error_aware import ErrorAwareWeights


def windows(starts, length=3):
    return torch.tensor([[s + t for t in range(length)] for s in starts])


def test_equal_losses_leave_the_weights_and_the_mean_unchanged():
    weights = ErrorAwareWeights()
    weights.reset(10)
    w = weights(torch.full((4,), 0.3, dtype=torch.float64), windows([0, 2, 4, 6]))
    assert torch.allclose(weights.frame_weights, torch.ones(10, dtype=torch.float64))
    assert torch.allclose(w, torch.full((4,), 0.25, dtype=torch.float64))


def test_windows_above_the_typical_error_lose_weight_and_it_compounds():
    weights = ErrorAwareWeights(trim=0.0)
    weights.reset(12)
    losses = torch.tensor([0.1, 0.1, 0.1, 1.1], dtype=torch.float64)
    ids = windows([0, 3, 6, 9])
    mu, sigma = losses.mean(), losses.std(unbiased=False)           # 0.35, 0.433
    w = weights(losses, ids)
    factor_high, factor_low = math.exp(-(1.1 - mu) * sigma), math.exp(-(0.1 - mu) * sigma)
    assert torch.allclose(weights.frame_weights[9:], torch.full((3,), factor_high, dtype=torch.float64))
    assert torch.allclose(weights.frame_weights[:3], torch.full((3,), factor_low, dtype=torch.float64))
    expected = torch.tensor([factor_low] * 3 + [factor_high], dtype=torch.float64)
    assert torch.allclose(w, expected / expected.sum())
    weights(losses, ids)                                              # the same batch again: factors compound
    assert torch.allclose(weights.frame_weights[9:], torch.full((3,), factor_high ** 2, dtype=torch.float64))


def test_trimmed_statistics_shared_frames_padding_and_the_sigma_guard():
    weights = ErrorAwareWeights()
    losses = torch.arange(20, dtype=torch.float64)
    mu, sigma = weights.batch_statistics(losses)
    assert mu == torch.arange(1, 19, dtype=torch.float64).mean()      # [floor(1), floor(19)) kept
    assert sigma == 1e-10                                              # std >= 2: the reference's guard
    weights = ErrorAwareWeights(trim=0.0)      # (with 2 windows the 5 % trim would keep only the lower one)
    weights.reset(5)
    ids = torch.tensor([[0, 0, 1], [1, 2, 3]])                          # frame 0 padded twice, frame 1 shared
    weights(torch.tensor([0.0, 1.0], dtype=torch.float64), ids)
    mu, sigma = 0.5, 0.5
    f0, f1 = math.exp(-(0.0 - mu) * sigma), math.exp(-(1.0 - mu) * sigma)
    assert torch.allclose(weights.frame_weights, torch.tensor([f0, f0 * f1, f1, f1, 1.0], dtype=torch.float64))


def test_weights_are_saved_and_loaded_with_their_size():
    from core.engine.checkpoint import load_state_strict
    trained = torch.nn.Sequential(ErrorAwareWeights())
    trained[0].reset(7)
    trained[0].frame_weights[3] = 0.5
    fresh = torch.nn.Sequential(ErrorAwareWeights())
    load_state_strict(fresh, trained.state_dict(), "checkpoint")       # the checkpoint's strict loader
    assert torch.equal(fresh[0].frame_weights, trained[0].frame_weights)
    with pytest.raises(RuntimeError, match="reset"):
        ErrorAwareWeights()(torch.ones(2), windows([0, 1]))


def test_windows_left_out_weigh_nothing_and_keep_their_frames_weights():
    weights, reference = ErrorAwareWeights(trim=0.0), ErrorAwareWeights(trim=0.0)
    weights.reset(12)
    reference.reset(12)
    losses = torch.tensor([0.1, 0.1, 0.0, 1.1], dtype=torch.float64)   # window 2 has no target: its 0 is no loss
    counted = torch.tensor([True, True, False, True])
    w = weights(losses, windows([0, 3, 6, 9]), counted)
    expected = reference(losses[counted], windows([0, 3, 9]))
    assert w[2] == 0 and torch.allclose(w[counted], expected)
    assert torch.equal(weights.frame_weights[6:9], torch.ones(3, dtype=torch.float64))
    assert torch.allclose(weights.frame_weights[[0, 1, 2, 3, 4, 5, 9, 10, 11]],
                          reference.frame_weights[[0, 1, 2, 3, 4, 5, 9, 10, 11]])
    assert torch.equal(weights(losses, windows([0, 3, 6, 9]), torch.zeros(4, dtype=torch.bool)),
                       torch.zeros(4, dtype=torch.float64))
