"""Heatmap grids and epipolar attention pictures (core/vis.py, scripts/vis_sample.py), and overlay videos of an
image pipeline, on a tiny trained run."""

import cv2
import numpy as np

import main
from core.skeleton import H36M17
from core.vis import BORDER_PX, LEGEND_ROW_PX, epipolar_picture, heatmap_grid
from scripts.vis_sample import main as vis_sample



def test_heatmap_grid_has_a_tile_per_view_and_joint():
    images = np.zeros((2, 64, 64, 3), np.uint8)
    heatmaps = np.zeros((2, 17, 16, 16))
    heatmaps[1, 3, 8, 8] = 1.0
    grid = heatmap_grid(images, heatmaps, H36M17.joint_names, side=48)
    assert grid.shape == (2 * 48, 17 * 48, 3)
    hot = grid[48:, 3 * 48:4 * 48]
    assert hot[20:30, 20:30].max() > 100 and grid[:48, 3 * 48:4 * 48][20:30, 20:30].max() == 0


def test_epipolar_picture_colours_the_samples_by_attention():
    images = np.zeros((2, 100, 100, 3), np.uint8)
    samples = np.stack([np.linspace(10, 90, 5), np.full(5, 50.0)], -1)[None]     # 1 source, 5 samples on y = 50
    attention = np.array([[0.05, 0.05, 0.8, 0.05, 0.05]])
    mask = np.array([[True, True, True, True, False]])
    picture = epipolar_picture(images, 0, np.array([30.0, 40.0]), [1], samples, attention, mask, ["a", "b"])
    assert picture.shape == (100, 200, 3)
    peak, weak, masked = picture[50, 100 + 50], picture[50, 100 + 10], picture[50, 100 + 90]
    assert peak[0] > 100 and peak[2] < 100      # the peak in JET red
    assert weak[2] > weak[0]                    # a weak sample in JET blue
    assert masked.sum() < weak.sum()            # the masked sample is not drawn (only the line's end reaches it)
    assert (picture[40, 30] > 200).any()        # the reference pixel is marked


def test_vis_sample_draws_heatmaps_and_the_epipolar_attention(trained_epipolar_run, tmp_path):
    assert vis_sample([str(trained_epipolar_run), "--sample", "3", "--joint", "r_wrist", "--view", "2",
                       "--out", str(tmp_path)]) == 0
    grid = cv2.imread(str(tmp_path / "heatmaps_sample3.png"))
    assert grid.shape == (4 * 96, 17 * 96, 3)
    picture = cv2.imread(str(tmp_path / "epipolar_sample3_view2_r_wrist.png"))
    # the reference view and its k nearest source views (the config's MODEL.FUSION sources), 64 px crops enlarged
    assert picture.shape[0] == 256 and picture.shape[1] % 256 == 0 and picture.shape[1] >= 2 * 256


def test_vis_sample_errors(trained_epipolar_run, tmp_path, capsys):
    assert vis_sample([str(trained_epipolar_run), "--sample", "99", "--out", str(tmp_path)]) == 2
    assert "the test set has 8 samples" in capsys.readouterr().err
    assert vis_sample([str(tmp_path / "none")]) == 2
    assert "config.yaml' does not exist" in capsys.readouterr().err


def test_overlay_video_of_an_image_pipeline_draws_on_the_crops(trained_epipolar_run, tmp_path):
    out = tmp_path / "video"
    assert main.main(["--cfg", str(trained_epipolar_run / "config.yaml"), "OUTPUT_DIR", str(out), "DOTRAIN", "False",
                      "DOTEST", "False", "VIS.VIDEO", "True", "VIS.VIDEO_HEIGHT", "64",
                      "WEIGHTS", str(trained_epipolar_run / "model_final.pth")]) == 0
    (video,) = (out / "videos").glob("*.mp4")
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    ok, frame = capture.read()
    assert ok and frame.shape == (64 + BORDER_PX + LEGEND_ROW_PX, 5 * 64 + 4 * BORDER_PX, 3)  # views, 3D, legend
    assert frame[:, :64].std() > 20  # a rendered crop, not a flat canvas
