import numpy as np
import pytest

from core.skeleton import H36M17
from datasets.synthetic.noise import DetectorNoise, apply_detector_noise, ar1_standard_noise

QUIET = dict(jitter_std_px=0.0, confidence_noise_std=0.0)  # switch off what a test does not look at


def person(rng, num_frames, num_views, size=200.0):
    """Distinct random keypoints inside a size x size box, all visible."""
    keypoints = rng.uniform(0.0, size, (num_frames, num_views, H36M17.num_joints, 2))
    return keypoints, np.ones(keypoints.shape[:3], dtype=bool)


def lag1_autocorrelation(values):
    centred = values - values.mean()
    return (centred[1:] * centred[:-1]).mean() / centred.var()


def test_no_noise_is_the_identity_with_full_confidence():
    keypoints, visible = person(np.random.default_rng(0), 5, 3)
    visible[:, :, ::2] = False
    noisy, confidence = apply_detector_noise(keypoints, visible, DetectorNoise.none(), np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, keypoints)
    np.testing.assert_array_equal(confidence, np.ones(visible.shape))
    assert noisy is not keypoints


def test_ar1_noise_matches_the_recursion_exactly():
    rho, shape = 0.7, (37, 4, 2)
    noise = ar1_standard_noise(np.random.default_rng(1), shape, rho)
    innovations = np.random.default_rng(1).standard_normal(shape)
    expected = np.empty(shape)
    expected[0] = innovations[0]
    for t in range(1, shape[0]):
        expected[t] = rho * expected[t - 1] + np.sqrt(1 - rho ** 2) * innovations[t]
    np.testing.assert_allclose(noise, expected, rtol=1e-12, atol=1e-12)


def test_jitter_has_the_requested_std_and_lag1_autocorrelation_in_every_frame():
    keypoints = np.zeros((64, 400, H36M17.num_joints, 2), dtype=np.float32)
    noise = DetectorNoise(jitter_std_px=3.0, temporal_correlation=0.8)
    noisy, _ = apply_detector_noise(keypoints, np.ones(keypoints.shape[:3], bool), noise, np.random.default_rng(2))
    assert noisy.dtype == np.float32
    assert noisy.std() == pytest.approx(3.0, rel=0.01)
    for frame in (0, 63):  # stationary from the first frame on
        assert noisy[frame].std() == pytest.approx(3.0, rel=0.03)
    lag1 = (noisy[1:] * noisy[:-1]).mean() / (noisy * noisy).mean()
    assert lag1 == pytest.approx(0.8, abs=0.01)
    assert lag1_autocorrelation(noisy[:, 0, 0, 0].astype(float)) > 0.5  # one track is smooth too


def test_independent_jitter_and_larger_jitter_for_occluded_joints():
    keypoints = np.zeros((2000, 2, H36M17.num_joints, 2))
    visible = np.ones(keypoints.shape[:3], dtype=bool)
    visible[:, 1] = False
    noise = DetectorNoise(jitter_std_px=2.0, occluded_jitter_scale=4.0)
    noisy, _ = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(3))
    assert noisy[:, 0].std() == pytest.approx(2.0, rel=0.02)
    assert noisy[:, 1].std() == pytest.approx(8.0, rel=0.02)
    assert lag1_autocorrelation(noisy[:, 0].reshape(2000, -1)[:, 0]) == pytest.approx(0.0, abs=0.1)


def test_jitter_scales_with_the_person_size_when_a_reference_box_is_given():
    rng = np.random.default_rng(4)
    small, visible = person(rng, 3000, 1, size=100.0)
    large = small * 3.0
    noise = DetectorNoise(jitter_std_px=2.0, reference_bbox_px=200.0, confidence_noise_std=0.0)
    noisy_small, _ = apply_detector_noise(small, visible, noise, np.random.default_rng(5))
    noisy_large, _ = apply_detector_noise(large, visible, noise, np.random.default_rng(5))
    box_small = np.ptp(small, axis=2).max(axis=-1).mean()
    assert (noisy_small - small).std() == pytest.approx(2.0 * box_small / 200.0, rel=0.03)
    np.testing.assert_allclose(noisy_large - large, 3.0 * (noisy_small - small), rtol=1e-9, atol=1e-9)


def test_outliers_rate_size_and_confidence():
    keypoints, visible = person(np.random.default_rng(6), 2000, 4)
    noise = DetectorNoise(outlier_prob=0.1, outlier_std_px=50.0, **QUIET)
    noisy, confidence = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(7))
    moved = (noisy != keypoints).any(-1)
    assert moved.mean() == pytest.approx(0.1, abs=0.005)
    assert (noisy - keypoints)[moved].std() == pytest.approx(50.0, rel=0.02)
    np.testing.assert_array_equal(confidence[moved], noise.confidence_outlier)
    np.testing.assert_array_equal(confidence[~moved], noise.confidence_visible)


def test_swaps_exchange_left_and_right_of_whole_views():
    keypoints, visible = person(np.random.default_rng(8), 1000, 4)
    visible[..., H36M17.left_joints] = False  # the reported joint carries its source's visibility
    noise = DetectorNoise(swap_prob=0.3, **QUIET)
    noisy, confidence = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(9))
    flipped = keypoints[:, :, list(H36M17.flip_permutation)]
    same = (noisy == keypoints).all(axis=(-1, -2))
    swapped = (noisy == flipped).all(axis=(-1, -2))
    assert (same ^ swapped).all()  # each view in each frame: all as is, or all left/right exchanged
    assert swapped.mean() == pytest.approx(0.3, abs=0.02)
    assert (noisy[swapped][:, H36M17.left_joints] == keypoints[swapped][:, H36M17.right_joints]).all()
    center = [j for j in range(H36M17.num_joints) if j not in H36M17.left_joints + H36M17.right_joints]
    np.testing.assert_array_equal(confidence[..., center], noise.confidence_visible)
    scale = noise.confidence_swap_scale
    np.testing.assert_allclose(confidence[~swapped][:, H36M17.right_joints], noise.confidence_visible)
    np.testing.assert_allclose(confidence[~swapped][:, H36M17.left_joints], noise.confidence_occluded)
    np.testing.assert_allclose(confidence[swapped][:, H36M17.left_joints], noise.confidence_visible * scale)
    np.testing.assert_allclose(confidence[swapped][:, H36M17.right_joints], noise.confidence_occluded * scale)


def test_confidence_is_lower_where_the_detection_is_worse():
    rng = np.random.default_rng(10)
    keypoints, visible = person(rng, 500, 4)
    visible = rng.random(visible.shape) < 0.7
    noise = DetectorNoise(jitter_std_px=2.0, outlier_prob=0.05, swap_prob=0.1, temporal_correlation=0.5)
    noisy, confidence = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(11))
    assert ((confidence >= 0) & (confidence <= 1)).all() and confidence.std() > 0
    error = np.linalg.norm(noisy - keypoints, axis=-1)
    assert confidence[visible].mean() > confidence[~visible].mean() + 0.3
    assert confidence[error > 30].mean() < confidence[error < 10].mean() - 0.3
    assert np.corrcoef(confidence.ravel(), error.ravel())[0, 1] < -0.2


def test_same_seed_same_result_other_seed_other_result():
    keypoints, visible = person(np.random.default_rng(12), 20, 3)
    noise = DetectorNoise(temporal_correlation=0.5, outlier_prob=0.1, swap_prob=0.1)
    first = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(13))
    second = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(13))
    other = apply_detector_noise(keypoints, visible, noise, np.random.default_rng(14))
    for a, b, c in zip(first, second, other):
        np.testing.assert_array_equal(a, b)
        assert (a != c).mean() > 0.5


def test_bad_input_raises():
    keypoints, visible = person(np.random.default_rng(15), 4, 2)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="keypoints_2d"):
        apply_detector_noise(keypoints[0], visible[0], DetectorNoise(), rng)
    with pytest.raises(ValueError, match="visible"):
        apply_detector_noise(keypoints, visible[:, :1], DetectorNoise(), rng)
    with pytest.raises(ValueError, match="visible"):
        apply_detector_noise(keypoints, visible.astype(float), DetectorNoise(), rng)
    nan = keypoints.copy()
    nan[1, 1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        apply_detector_noise(nan, visible, DetectorNoise(), rng)
    with pytest.raises(ValueError, match="swap_prob"):
        apply_detector_noise(keypoints[:, :, :5], visible[:, :, :5], DetectorNoise(swap_prob=0.1), rng)
    with pytest.raises(TypeError):
        apply_detector_noise(keypoints, visible, {"jitter_std_px": 1.0}, rng)
    for bad in (dict(temporal_correlation=1.0), dict(jitter_std_px=-1.0), dict(outlier_prob=1.5),
                dict(confidence_visible=2.0), dict(reference_bbox_px=0.0), dict(outlier_std_px=np.nan)):
        with pytest.raises(ValueError):
            DetectorNoise(**bad)
