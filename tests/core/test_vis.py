import cv2
import numpy as np
import pytest

from core.skeleton import H36M17
from core.vis import (BORDER_COLOR, BORDER_PX, GRID_COLOR, GROUND_TRUTH_STYLE, LEGEND_BACKGROUND, LEGEND_ROW_PX,
                      SkeletonStyle, draw_pose_3d, draw_skeleton, join_panels, legend, put_label, tile, with_legend,
                      write_png)


def test_draw_skeleton_draws_bones_in_side_colours_and_skips_nan():
    canvas = np.zeros((100, 100, 3), np.uint8)
    points = np.full((17, 2), np.nan)
    points[0], points[4] = (20, 50), (80, 50)  # pelvis -> left hip: a left bone
    out = draw_skeleton(canvas, points, SkeletonStyle(left=(0, 0, 255), joint_radius=0), skeleton=H36M17)
    assert tuple(out[50, 50]) == (0, 0, 255)
    assert canvas.sum() == 0  # the input is not modified
    assert draw_skeleton(canvas, np.full((17, 2), np.nan), skeleton=H36M17).sum() == 0


def test_tile_and_label(tmp_path):
    grid = tile([np.full((10, 20, 3), i, np.uint8) for i in range(3)])
    assert grid.shape == (20, 40, 3) and grid[15, 25].sum() == 0 and grid[15, 5, 0] == 2
    with pytest.raises(ValueError, match="one size"):
        tile([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8)])
    labelled = put_label(np.zeros((40, 120, 3), np.uint8), "cam 1")
    assert labelled.max() == 255
    write_png(tmp_path / "x.png", labelled)
    assert cv2.imread(str(tmp_path / "x.png")).shape == (40, 120, 3)
    with pytest.raises(OSError, match="could not write"):
        write_png(tmp_path / "missing" / "x.png", labelled)


def test_translucent_styles_mix_with_what_lies_beneath():
    canvas = np.full((100, 100, 3), 100, np.uint8)
    points = np.full((17, 2), np.nan)
    points[0], points[4] = (20, 50), (80, 50)
    half = SkeletonStyle(left=(200, 0, 0), thickness=5, joint_radius=0, opacity=0.5)
    out = draw_skeleton(canvas, points, half, skeleton=H36M17)
    assert tuple(out[50, 50]) == (150, 50, 50) and tuple(out[10, 10]) == (100, 100, 100)
    pose = np.zeros((17, 3))
    pose[4] = (500, 0, 0)
    image = draw_pose_3d([pose], [half], size=64, grid=False, background=100, skeleton=H36M17)
    assert (image == (150, 50, 50)).all(-1).any() and not (image == (200, 0, 0)).all(-1).any()


def test_panels_are_joined_with_borders_and_tiled_with_them():
    a, b = np.zeros((10, 20, 3), np.uint8), np.full((10, 30, 3), 7, np.uint8)
    row = join_panels([a, b])
    assert row.shape == (10, 50 + BORDER_PX, 3) and (row[:, 20:20 + BORDER_PX] == BORDER_COLOR).all()
    assert (row[:, :20] == 0).all() and (row[:, 20 + BORDER_PX:] == 7).all()
    column = join_panels([a, a], axis=0)
    assert column.shape == (20 + BORDER_PX, 20, 3) and (column[10:10 + BORDER_PX] == BORDER_COLOR).all()
    with pytest.raises(ValueError, match="one height"):
        join_panels([a, np.zeros((11, 20, 3), np.uint8)])
    grid = tile([np.full((10, 20, 3), i + 1, np.uint8) for i in range(3)], border=BORDER_PX)
    assert grid.shape == (20 + BORDER_PX, 40 + BORDER_PX, 3)
    assert (grid[:, 20:20 + BORDER_PX] == BORDER_COLOR).all() and (grid[10:10 + BORDER_PX] == BORDER_COLOR).all()
    assert (grid[10 + BORDER_PX:, 20 + BORDER_PX:] == 0).all() and (grid[10 + BORDER_PX:, :20] == 3).all()


def test_the_legend_shows_each_style_and_its_label():
    prediction = SkeletonStyle(thickness=2)
    entries = [("truth", GROUND_TRUTH_STYLE), ("prediction, left / right", prediction)]
    strip = legend(400, entries)
    assert strip.shape == (LEGEND_ROW_PX, 400, 3)
    assert (strip == prediction.left).all(-1).any() and (strip == prediction.right).all(-1).any()
    truth = (strip[..., 1] > strip[..., 0] + 60).any()                             # the green band, translucent
    assert truth and not (strip == GROUND_TRUTH_STYLE.center).all(-1).any()
    unlabelled = legend(400, [("", style) for _, style in entries])
    text = (strip != unlabelled).any(-1) & (strip.min(-1) > 100)                     # the labels' light text
    assert text[:, 60:].sum() > 150 and not (unlabelled[:, 100:] != LEGEND_BACKGROUND).any()
    assert legend(120, entries).shape == (2 * LEGEND_ROW_PX, 120, 3)                 # too narrow: two rows
    assert (legend(400, []) == LEGEND_BACKGROUND).all()
    picture = with_legend(np.zeros((50, 400, 3), np.uint8), entries)
    assert picture.shape == (50 + BORDER_PX + LEGEND_ROW_PX, 400, 3) and (picture[50 + BORDER_PX:] == strip).all()


def _only(joint: int, point) -> np.ndarray:
    pose = np.full((17, 3), np.nan)
    pose[joint] = point
    return pose


RED, BLUE = SkeletonStyle(center=(255, 0, 0), joint_radius=3), SkeletonStyle(center=(0, 0, 255), joint_radius=3)


def _centroid(image: np.ndarray, color) -> np.ndarray:
    rows, cols = np.nonzero((image == color).all(-1))
    assert rows.size, f"no pixel of colour {color}"
    return np.array([rows.mean(), cols.mean()])


def test_draw_pose_3d_draws_z_up_and_x_right_from_every_viewpoint():
    root, above = _only(0, (0, 0, 0)), _only(10, (0, 0, 800))
    for azimuth in (0.0, 45.0, 90.0, 200.0):
        for elevation in (-20.0, 0.0, 12.0, 45.0):
            image = draw_pose_3d([root, above], [RED, BLUE], size=100, elevation_deg=elevation, azimuth_deg=azimuth,
                                 grid=False, center=(0, 0, 400), radius=500, skeleton=H36M17)
            assert _centroid(image, BLUE.center)[0] < _centroid(image, RED.center)[0] - 20  # smaller row: higher
    right = draw_pose_3d([root, _only(10, (500, 0, 0))], [RED, BLUE], size=100, elevation_deg=0.0, grid=False,
                         center=(0, 0, 0), radius=600, skeleton=H36M17)
    assert _centroid(right, BLUE.center)[1] > _centroid(right, RED.center)[1] + 20  # azimuth 0: +x to the right
    far = draw_pose_3d([root, _only(10, (0, 500, 0))], [RED, BLUE], size=100, elevation_deg=30.0, grid=False,
                       center=(0, 0, 0), radius=600, skeleton=H36M17)
    assert _centroid(far, BLUE.center)[0] < _centroid(far, RED.center)[0] - 10  # seen from above: far is higher
    side = draw_pose_3d([root, _only(10, (0, -500, 0))], [RED, BLUE], size=100, elevation_deg=0.0, azimuth_deg=90.0,
                        grid=False, center=(0, 0, 0), radius=600, skeleton=H36M17)
    assert _centroid(side, BLUE.center)[1] > _centroid(side, RED.center)[1] + 20  # looking along +x: -y right


def test_draw_pose_3d_grid_scale_nan_and_shapes():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 200, (17, 3)) + (0, 0, 900)
    image = draw_pose_3d([pose], [RED], size=(60, 80), skeleton=H36M17)
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8
    assert (image == GRID_COLOR).all(-1).any() and (image == RED.center).all(-1).any()
    assert not (draw_pose_3d([pose], [RED], size=(60, 80), grid=False, skeleton=H36M17) == GRID_COLOR).all(-1).any()
    # one scale whatever the view: the sphere about the poses fills the picture, so nothing leaves it
    for azimuth in range(0, 360, 30):
        drawn = (draw_pose_3d([pose], [RED], size=64, azimuth_deg=azimuth, grid=False, skeleton=H36M17) != 40).any(-1)
        assert drawn.any() and not drawn[0].any() and not drawn[-1].any() and not drawn[:, 0].any()
    holes = pose.copy()
    holes[[3, 10]] = np.nan
    assert (draw_pose_3d([holes], [RED], skeleton=H36M17) != 40).any()
    assert (draw_pose_3d([np.full((17, 3), np.nan)], [RED], size=32, skeleton=H36M17) == 40).all()
    assert (draw_pose_3d([], [], size=32, skeleton=H36M17) == 40).all()
    for bad in ([np.zeros((16, 3))], [np.zeros((17, 2))], np.zeros((17, 3)), [np.zeros((1, 17, 3))]):
        with pytest.raises(ValueError, match="shape"):
            draw_pose_3d(bad, [RED], skeleton=H36M17)
    with pytest.raises(ValueError, match="one style per pose"):
        draw_pose_3d([pose, pose], [RED], skeleton=H36M17)
