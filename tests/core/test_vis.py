import cv2
import numpy as np
import pytest

from core.vis import SkeletonStyle, draw_skeleton, put_label, tile, write_png


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
