"""Overlay videos of test sequences: from main.py (VIS.VIDEO) and from a run's saved predictions."""
import json
from pathlib import Path

import cv2
import numpy as np

import main
from core.vis import BORDER_PX, LEGEND_ROW_PX
from scripts.render_video import main as render_video

ROOT = Path(__file__).resolve().parents[3]
WORLD = ["DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "12",
         "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.VAL_SUBJECTS", "[]", "VIS.PREVIEW_SAMPLES", "0",
         "VIS.VIDEO_HEIGHT", "64"]


def config(name):
    return str(ROOT / "configs" / "synthetic" / name)


def video_shape(path):
    video = cv2.VideoCapture(str(path))
    assert video.isOpened(), path
    shape = (int(video.get(cv2.CAP_PROP_FRAME_COUNT)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)),
             int(video.get(cv2.CAP_PROP_FRAME_WIDTH)))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    return shape, frames


def framed(views: int, legend_rows: int = 1, side: int = 64):
    """(height, width) of a video frame: ``views`` panels and the 3D panel with borders, above the legend."""
    return side + BORDER_PX + legend_rows * LEGEND_ROW_PX, (views + 1) * side + views * BORDER_PX


def test_videos_without_a_test_run_the_model_on_the_chosen_sequences(tmp_path):
    out = tmp_path / "dlt"
    assert main.main(["--cfg", config("dlt_noisy2d.yaml"), "OUTPUT_DIR", str(out), *WORLD, "DOTEST", "False",
                      "VIS.VIDEO", "True", "VIS.VIDEO_SEQUENCES", "3"]) == 0
    videos = sorted((out / "videos").glob("*.mp4"))
    # 4 test sequences (S9 walk, S9 squat, S11 walk, S11 squat); three spread over them, the ends included
    assert [v.name for v in videos] == ["S11_squat_0.mp4", "S11_walk_0.mp4", "S9_walk_0.mp4"]
    (frames, height, width), pictures = video_shape(videos[0])
    assert (frames, (height, width)) == (12, framed(4))  # 4 views and the 3D panel, 64 pixels each, and the legend
    assert len(pictures) == 12 and pictures[0].std() > 5  # something is drawn
    borders = pictures[0][:64, [k * (64 + BORDER_PX) - BORDER_PX // 2 - 1 for k in range(1, 5)]]
    assert borders.mean() > 180 and pictures[0][:64, 64 - 8:64 - 4].mean() < 120  # light lines between the panels
    assert (pictures[0][64 + BORDER_PX:].min(-1) > 180).sum() > 100              # the legend's text
    assert not (out / "metrics.json").exists()


def test_videos_of_a_lifter_from_main_and_from_saved_predictions(tmp_path):
    out = tmp_path / "lifter"
    tiny = ["MODEL.LIFTER.LINEAR.HIDDEN", "32", "SOLVER.MAX_EPOCHS", "1", "SOLVER.BATCH_SIZE", "32"]
    assert main.main(["--cfg", config("linear_lifter.yaml"), "OUTPUT_DIR", str(out), *WORLD, *tiny, "VIS.VIDEO",
                      "True", "VIS.VIDEO_SEQUENCES", "1"]) == 0
    assert json.loads((out / "metrics.json").read_text())["num_poses"] == 4 * 2 * 2 * 12  # views x subjects x ...
    log = (out / "log.txt").read_text()
    assert "for the videos" not in log  # the test's predictions were drawn, not predicted again
    (video,) = (out / "videos").glob("*.mp4")
    assert video.name == "S9_walk_0_cam0.mp4" and video_shape(video)[0] == (12, *framed(1, 2))  # narrow: 2 legend rows

    again = tmp_path / "again"
    assert render_video([str(out), "--sequences", "2", "--out", str(again)]) == 0
    rendered = sorted(again.glob("*.mp4"))
    assert len(rendered) == 2 and video_shape(rendered[0])[0] == (12, *framed(1, 2))
    first_again = video_shape(again / video.name)[1]
    assert np.abs(first_again[5].astype(int) - video_shape(video)[1][5].astype(int)).mean() < 2  # the same pictures


def test_render_video_refuses_foreign_predictions(tmp_path, capsys):
    out = tmp_path / "dlt"
    assert main.main(["--cfg", config("dlt_noisy2d.yaml"), "OUTPUT_DIR", str(out), *WORLD]) == 0
    assert render_video([str(tmp_path / "nothing")]) == 2
    assert "config.yaml' does not exist" in capsys.readouterr().err
    cfg = (out / "config.yaml").read_text().replace("FRAMES_PER_SEQUENCE: 12", "FRAMES_PER_SEQUENCE: 10")
    (out / "config.yaml").write_text(cfg)
    assert render_video([str(out)]) == 2
    assert "do not match the 40 test samples" in capsys.readouterr().err
