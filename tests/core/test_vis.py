import cv2
import numpy as np
import pytest

from core.vis import GRID_COLOR, SkeletonStyle, draw_pose_3d, draw_skeleton, put_label, tile, write_png


def test_draw_skeleton_draws_bones_in_side_colours_and_skips_nan():
    canvas = np.zeros((100, 100, 3), np.uint8)
    points = np.full((17, 2), np.nan)
    points[0], points[4] = (20, 50), (80, 50)  # pelvis -> left hip: a left bone
    out = draw_skeleton(canvas, points, SkeletonStyle(left=(0, 0, 255), joint_radius=0))
    assert tuple(out[50, 50]) == (0, 0, 255)
    assert canvas.sum() == 0  # the input is not modified
    assert draw_skeleton(canvas, np.full((17, 2), np.nan)).sum() == 0


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
                                 grid=False, center=(0, 0, 400), radius=500)
            assert _centroid(image, BLUE.center)[0] < _centroid(image, RED.center)[0] - 20  # smaller row: higher
    right = draw_pose_3d([root, _only(10, (500, 0, 0))], [RED, BLUE], size=100, elevation_deg=0.0, grid=False,
                         center=(0, 0, 0), radius=600)
    assert _centroid(right, BLUE.center)[1] > _centroid(right, RED.center)[1] + 20  # azimuth 0: +x to the right
    far = draw_pose_3d([root, _only(10, (0, 500, 0))], [RED, BLUE], size=100, elevation_deg=30.0, grid=False,
                       center=(0, 0, 0), radius=600)
    assert _centroid(far, BLUE.center)[0] < _centroid(far, RED.center)[0] - 10  # seen from above: far is higher
    side = draw_pose_3d([root, _only(10, (0, -500, 0))], [RED, BLUE], size=100, elevation_deg=0.0, azimuth_deg=90.0,
                        grid=False, center=(0, 0, 0), radius=600)
    assert _centroid(side, BLUE.center)[1] > _centroid(side, RED.center)[1] + 20  # looking along +x: -y right


def test_draw_pose_3d_grid_scale_nan_and_shapes():
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 200, (17, 3)) + (0, 0, 900)
    image = draw_pose_3d([pose], [RED], size=(60, 80))
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8
    assert (image == GRID_COLOR).all(-1).any() and (image == RED.center).all(-1).any()
    assert not (draw_pose_3d([pose], [RED], size=(60, 80), grid=False) == GRID_COLOR).all(-1).any()
    # one scale whatever the view: the sphere about the poses fills the picture, so nothing leaves it
    for azimuth in range(0, 360, 30):
        drawn = (draw_pose_3d([pose], [RED], size=64, azimuth_deg=azimuth, grid=False) != 40).any(-1)
        assert drawn.any() and not drawn[0].any() and not drawn[-1].any() and not drawn[:, 0].any()
    holes = pose.copy()
    holes[[3, 10]] = np.nan
    assert (draw_pose_3d([holes], [RED]) != 40).any()
    assert (draw_pose_3d([np.full((17, 3), np.nan)], [RED], size=32) == 40).all()
    assert (draw_pose_3d([], [], size=32) == 40).all()
    for bad in ([np.zeros((16, 3))], [np.zeros((17, 2))], np.zeros((17, 3)), [np.zeros((1, 17, 3))]):
        with pytest.raises(ValueError, match="shape"):
            draw_pose_3d(bad, [RED])
    with pytest.raises(ValueError, match="one style per pose"):
        draw_pose_3d([pose, pose], [RED])
