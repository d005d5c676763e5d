import numpy as np
import pytest

from core.engine.preview import CANVAS_SIDE, GROUND_TRUTH_3D_STYLE, preview_sample
from core.skeleton import H36M17
from core.vis import BORDER_COLOR, BORDER_PX, GROUND_TRUTH_STYLE, LEGEND_ROW_PX, PREDICTION_STYLE, draw_pose_3d
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec

WORLD = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=3))
YELLOW, GREEN = PREDICTION_STYLE.center, GROUND_TRUTH_STYLE.center
HEAD = 10


def extent(cells: int, side: int = CANVAS_SIDE) -> int:
    """Pixels of ``cells`` panels in a row (or column) with the borders between them."""
    return cells * side + (cells - 1) * BORDER_PX


def check_layout(picture, rows: int, columns: int, side: int = CANVAS_SIDE) -> None:
    """A grid of rows x columns panels with borders between them, above a legend of whole rows."""
    height, width = extent(rows, side), extent(columns, side)
    legend = picture.shape[0] - height - BORDER_PX
    assert picture.shape[1:] == (width, 3) and legend > 0 and legend % LEGEND_ROW_PX == 0, picture.shape
    for k in range(1, columns):
        assert (picture[:height, k * (side + BORDER_PX) - BORDER_PX] == BORDER_COLOR).all()
    for k in range(1, rows + 1):  # and between the grid and the legend
        assert (picture[k * (side + BORDER_PX) - BORDER_PX] == BORDER_COLOR).all()
    assert (picture[height + BORDER_PX:] == 255).all(-1).any()  # the legend's white text


def panel(picture, row: int, column: int, side: int = CANVAS_SIDE):
    top, left = row * (side + BORDER_PX), column * (side + BORDER_PX)
    return picture[top:top + side, left:left + side]


def test_preview_tiles_every_view_and_draws_the_prediction():
    sample = SyntheticMultiView(WORLD)[1]
    plain = preview_sample(sample, H36M17)
    check_layout(plain, 2, 2)
    assert plain.dtype == np.uint8
    with_prediction = preview_sample(sample, H36M17, sample["keypoints_3d"][0].numpy() + 30.0)
    check_layout(with_prediction, 2, 2)
    assert (with_prediction != plain).any()
    assert (preview_sample(sample, H36M17, sample["keypoints_3d"][0].numpy() + 30.0, absolute=True) == with_prediction).all()
    # the legend names the prediction only when there is one
    legend_plain, legend_prediction = plain[extent(2):], with_prediction[extent(2):]
    assert legend_plain.shape == legend_prediction.shape and (legend_plain != legend_prediction).any()
    assert _has(legend_prediction, YELLOW) and not _has(legend_plain, YELLOW)
    images = SyntheticMultiView(WORLD, mode="images", image_size=48)[1]
    check_layout(preview_sample(images, H36M17), 2, 2, side=48)


def test_the_truth_band_shows_around_a_prediction_on_it():
    sample = SyntheticMultiView(WORLD)[1]
    picture = panel(preview_sample(sample, H36M17, sample["keypoints_3d"][0].numpy()), 0, 0)
    assert _has(picture, YELLOW)
    greenish = (picture[..., 1] > picture[..., 0] + 40) & (picture[..., 1] > picture[..., 2] + 40)
    assert greenish.sum() > (picture == YELLOW).all(-1).sum()  # the wide translucent band is not covered


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
    check_layout(preview_sample(sample, H36M17), 1, 1)
    exact = preview_sample(sample, H36M17, target, absolute=False)
    check_layout(exact, 1, 3)  # the view, then 3D front and 3D side
    view, front, side = (panel(exact, 0, c) for c in range(3))
    assert _has(front, YELLOW) and _has(side, GREEN) and _has(view, YELLOW)
    # the prediction is re-centred on its own pelvis and placed at the true one: a translation changes nothing
    assert (preview_sample(sample, H36M17, target + (40.0, -25.0, 300.0), absolute=False) == exact).all()
    moved = target.copy()
    moved[16] += (0.0, 0.0, 200.0)  # the right wrist 20 cm deeper: the side view sees it, the view barely
    assert (panel(preview_sample(sample, H36M17, moved, absolute=False), 0, 2) != side).any()
    # no prediction: as before, no 3D panels
    check_layout(preview_sample(sample, H36M17, None, absolute=False), 1, 1)


def test_prediction_equal_to_the_target_lies_within_the_ground_truth():
    sample = SyntheticMultiView(WORLD, views="single")[1]
    target = _camera_target(sample)
    truth_only = draw_pose_3d([target], [GROUND_TRUTH_3D_STYLE], grid=False, skeleton=H36M17)
    both = draw_pose_3d([target, target], [GROUND_TRUTH_3D_STYLE, PREDICTION_STYLE], grid=False, skeleton=H36M17)
    assert _has(both, YELLOW)
    assert ((both != truth_only).any(-1) <= (truth_only != 40).any(-1)).all()  # yellow only where green is


def test_up_is_up_in_the_camera_and_world_frames():
    single = SyntheticMultiView(WORLD, views="single")[1]
    pred = _camera_target(single)
    pred[HEAD] = (0.0, -2500.0, 0.0)  # camera y points down: the head 2.5 m above the pelvis
    picture = preview_sample(single, H36M17, pred, absolute=False)
    for view in (panel(picture, 0, 1), panel(picture, 0, 2)):
        assert _top_row(view, YELLOW) < _top_row(view, GREEN) - 20
    multi = SyntheticMultiView(WORLD)[1]
    pred = _world_target(multi)
    pred[HEAD] = (0.0, 0.0, 2500.0)  # world z up
    picture = preview_sample(multi, H36M17, pred, absolute=False)
    check_layout(picture, 2, 3)  # 4 views and 2 3D panels
    for view in (panel(picture, 1, 1), panel(picture, 1, 2)):
        assert _has(view, YELLOW) and _top_row(view, YELLOW) < _top_row(view, GREEN) - 20


def test_root_relative_preview_survives_nans_and_checks_shapes():
    sample = SyntheticMultiView(WORLD, views="single")[1]
    target = _camera_target(sample)
    holes = target.copy()
    holes[[3, 13]] = np.nan
    check_layout(preview_sample(sample, H36M17, holes, absolute=False), 1, 3)
    no_root = target.copy()
    no_root[0] = np.nan
    nothing = preview_sample(sample, H36M17, np.full((17, 3), np.nan), absolute=False)
    check_layout(nothing, 1, 3)
    assert not _has(nothing, YELLOW)
    assert not _has(preview_sample(sample, H36M17, no_root, absolute=False)[:CANVAS_SIDE], YELLOW)  # nothing to re-centre on
    complete = preview_sample(sample, H36M17, target, absolute=False)
    for key in ("keypoints_3d", "keypoints_2d_gt"):                 # a joint missing from the data
        sample[key] = sample[key].clone()
        sample[key][..., 5, :] = float("nan")
    missing = preview_sample(sample, H36M17, target, absolute=False)
    check_layout(missing, 1, 3)
    view = (panel(complete, 0, 0) != panel(missing, 0, 0)).any(-1)
    assert view.mean() < 0.01                    # framed as before, only that joint (and its wide truth band) is gone
    with pytest.raises(ValueError, match="pred_3d must have shape"):
        preview_sample(sample, H36M17, target[:16], absolute=False)


def test_root_relative_preview_in_images_mode_uses_the_image_size():
    images = SyntheticMultiView(WORLD, mode="images", image_size=48, views="single")[1]
    check_layout(preview_sample(images, H36M17, _camera_target(images), absolute=False), 1, 3, side=48)
