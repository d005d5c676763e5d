import numpy as np
import pytest

from core.engine.preview import CANVAS_SIDE, GROUND_TRUTH_3D_STYLE, PREDICTION_3D_STYLE, preview_sample
from core.vis import GROUND_TRUTH_STYLE, PREDICTION_STYLE, draw_pose_3d
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec

WORLD = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=3))
YELLOW, GREEN = PREDICTION_STYLE.center, GROUND_TRUTH_STYLE.center
HEAD = 10


def test_preview_tiles_every_view_and_draws_the_prediction():
    sample = SyntheticMultiView(WORLD)[1]
    plain = preview_sample(sample)
    assert plain.shape == (2 * CANVAS_SIDE, 2 * CANVAS_SIDE, 3) and plain.dtype == np.uint8
    with_prediction = preview_sample(sample, sample["keypoints_3d"][0].numpy() + 30.0)
    assert (with_prediction != plain).any()
    assert (preview_sample(sample, sample["keypoints_3d"][0].numpy() + 30.0, absolute=True) == with_prediction).all()
    images = SyntheticMultiView(WORLD, mode="images", image_size=48)[1]
    assert preview_sample(images).shape == (96, 96, 3)


def _camera_target(sample) -> np.ndarray:
    """The centre frame's root-relative 3D in the camera frame of the sample's single view."""
    cameras = sample["cameras"]
    target = cameras.world_to_camera(sample["keypoints_3d"][0].to(cameras.dtype)[None])[0].numpy()
    return target - target[0]


def _world_target(sample) -> np.ndarray:
    target = sample["keypoints_3d"][0].numpy().astype(np.float64)
    return target - target[0]


def _has(image, color) -> bool:
    return bool((image == color).all(-1).any())


def _top_row(image, color) -> int:
    return int(np.nonzero((image == color).all(-1))[0].min())


def test_root_relative_single_view_preview_adds_3d_panels():
    sample = SyntheticMultiView(WORLD, views="single")[1]
    target = _camera_target(sample)
    assert preview_sample(sample).shape == (CANVAS_SIDE, CANVAS_SIDE, 3)
    exact = preview_sample(sample, target, absolute=False)
    assert exact.shape == (CANVAS_SIDE, 3 * CANVAS_SIDE, 3)  # the view, then 3D front and 3D side
    view, panels_3d = exact[:, :CANVAS_SIDE], exact[:, CANVAS_SIDE:]
    assert _has(panels_3d, YELLOW) and _has(panels_3d, GREEN) and _has(view, YELLOW)
    # the prediction is re-centred on its own pelvis and placed at the true one: a translation changes nothing
    assert (preview_sample(sample, target + (40.0, -25.0, 300.0), absolute=False) == exact).all()
    moved = target.copy()
    moved[16] += (0.0, 0.0, 200.0)  # the right wrist 20 cm deeper: the side view sees it, the view barely
    assert (preview_sample(sample, moved, absolute=False)[:, 2 * CANVAS_SIDE:] != exact[:, 2 * CANVAS_SIDE:]).any()
    # no prediction: as before, no 3D panels
    assert preview_sample(sample, None, absolute=False).shape == (CANVAS_SIDE, CANVAS_SIDE, 3)


def test_prediction_equal_to_the_target_lies_within_the_ground_truth():
    sample = SyntheticMultiView(WORLD, views="single")[1]
    target = _camera_target(sample)
    truth_only = draw_pose_3d([target], [GROUND_TRUTH_3D_STYLE], grid=False)
    both = draw_pose_3d([target, target], [GROUND_TRUTH_3D_STYLE, PREDICTION_3D_STYLE], grid=False)
    assert _has(both, YELLOW)
    assert ((both != truth_only).any(-1) <= (truth_only != 40).any(-1)).all()  # yellow only where green is


def test_up_is_up_in_the_camera_and_world_frames():
    single = SyntheticMultiView(WORLD, views="single")[1]
    pred = _camera_target(single)
    pred[HEAD] = (0.0, -2500.0, 0.0)  # camera y points down: the head 2.5 m above the pelvis
    picture = preview_sample(single, pred, absolute=False)
    for panel in (picture[:, CANVAS_SIDE:2 * CANVAS_SIDE], picture[:, 2 * CANVAS_SIDE:]):
        assert _top_row(panel, YELLOW) < _top_row(panel, GREEN) - 20
    multi = SyntheticMultiView(WORLD)[1]
    pred = _world_target(multi)
    pred[HEAD] = (0.0, 0.0, 2500.0)  # world z up
    picture = preview_sample(multi, pred, absolute=False)
    assert picture.shape == (2 * CANVAS_SIDE, 3 * CANVAS_SIDE, 3)  # 4 views and 2 3D panels
    for panel in (picture[CANVAS_SIDE:, CANVAS_SIDE:2 * CANVAS_SIDE], picture[CANVAS_SIDE:, 2 * CANVAS_SIDE:]):
        assert _has(panel, YELLOW) and _top_row(panel, YELLOW) < _top_row(panel, GREEN) - 20


def test_root_relative_preview_survives_nans_and_checks_shapes():
    sample = SyntheticMultiView(WORLD, views="single")[1]
    target = _camera_target(sample)
    holes = target.copy()
    holes[[3, 13]] = np.nan
    assert preview_sample(sample, holes, absolute=False).shape == (CANVAS_SIDE, 3 * CANVAS_SIDE, 3)
    no_root = target.copy()
    no_root[0] = np.nan
    nothing = preview_sample(sample, np.full((17, 3), np.nan), absolute=False)
    assert nothing.shape == (CANVAS_SIDE, 3 * CANVAS_SIDE, 3) and not _has(nothing, YELLOW)
    assert not _has(preview_sample(sample, no_root, absolute=False), YELLOW)  # nothing to re-centre on
    complete = preview_sample(sample, target, absolute=False)
    for key in ("keypoints_3d", "keypoints_2d_gt"):                 # a joint missing from the data
        sample[key] = sample[key].clone()
        sample[key][..., 5, :] = float("nan")
    missing = preview_sample(sample, target, absolute=False)
    assert missing.shape == (CANVAS_SIDE, 3 * CANVAS_SIDE, 3)
    view = (complete[:, :CANVAS_SIDE] != missing[:, :CANVAS_SIDE]).any(-1)
    assert view.mean() < 0.005                                       # framed as before, only that joint is gone
    with pytest.raises(ValueError, match="pred_3d must have shape"):
        preview_sample(sample, target[:16], absolute=False)


def test_root_relative_preview_in_images_mode_uses_the_image_size():
    images = SyntheticMultiView(WORLD, mode="images", image_size=48, views="single")[1]
    picture = preview_sample(images, _camera_target(images), absolute=False)
    assert picture.shape == (48, 3 * 48, 3)
