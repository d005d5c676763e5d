"""The demo footage the toolbox makes itself (scripts/make_demo_footage.py): the README's two demo commands run as
the README states them on a fresh folder, the footage read back by the demo's own readers, and the demo's
``--truth`` errors."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.skeleton import H36M17
from datasets.formats.calibration import read_calibration
from datasets.formats.keypoints2d import approximated_joints, read_openpose_folder, to_h36m
from scripts.demo_multiview import main as demo
from scripts.make_demo_footage import main as make_footage

ROOT = Path(__file__).resolve().parents[2]
# exactly as README.md states them (test_the_readme_states_these_commands checks it)
README_COMMANDS = (
    "python scripts/make_demo_footage.py --out outs/demo_footage",
    "python scripts/demo_multiview.py --calibration outs/demo_footage/calibration.toml \\\n"
    "    --keypoints outs/demo_footage/openpose/cam{1,2,3,4} --layout body25 \\\n"
    "    --videos outs/demo_footage/videos/cam{1,2,3,4}.mp4 --truth outs/demo_footage/truth.npz --out outs/demo",
)
FRAMES = 6


def test_the_readme_states_these_commands():
    readme = (ROOT / "README.md").read_text()
    for command in README_COMMANDS:
        assert command in readme, f"README.md does not state the demo command verbatim:\n{command}"


def test_the_readme_commands_run_on_a_fresh_folder(tmp_path):
    """The two commands, verbatim in bash (braces expanded), in a folder holding nothing but the scripts (as a clone
    without ../shared), on a clip of FRAMES frames (the footage command with --frames appended)."""
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    footage, reconstruction = README_COMMANDS
    for command in (f"{footage} --frames {FRAMES}", reconstruction):
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr
    mpjpe = float(re.search(r"3D error against the truth \S+: MPJPE ([\d.]+) mm", log).group(1))
    assert mpjpe < 40.0, log        # measured: 18 mm over 8 frames, 19.8 mm over the default 100
    assert "over the 13 joints pelvis, r_hip" in log and "made from other keypoints: spine, thorax, neck, head" in log
    demo_out = tmp_path / "outs" / "demo"
    error = json.loads((demo_out / "truth_error.json").read_text())
    assert error["mpjpe_mm"] == pytest.approx(mpjpe) and error["joint_frames"] == 13 * FRAMES
    assert error["joint_frames_found"] >= 12 * FRAMES and set(error["per_joint_mpjpe_mm"]) == set(H36M17.joint_names)
    for name in ("poses_3d.npz", "poses_3d.json", "summary.json", "overlay.mp4", "overlay_still.png"):
        assert (demo_out / name).is_file(), name
    video = cv2.VideoCapture(str(demo_out / "overlay.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    out = tmp_path_factory.mktemp("footage") / "demo_footage"
    assert make_footage(["--out", str(out), "--frames", str(FRAMES), "--size", "160", "--action", "wave"]) == 0
    return out


def test_the_footage_reads_back_as_the_world_made_it(footage):
    cameras, names = read_calibration(footage / "calibration.toml")
    assert names == ["cam1", "cam2", "cam3", "cam4"] and (cameras.image_size == 160).all()
    truth = np.load(footage / "truth.npz", allow_pickle=False)
    assert truth["points_3d_mm"].shape == (FRAMES, 17, 3) and list(truth["joint_names"]) == list(H36M17.joint_names)
    projected = cameras.project(torch.from_numpy(truth["points_3d_mm"])[:, None]).numpy()       # T, V, 17, 2
    own = ~np.isin(H36M17.joint_names, approximated_joints("body25"))
    for v, name in enumerate(names):
        keypoints, layout = read_openpose_folder(footage / "openpose" / name, "body25")
        assert layout == "body25" and keypoints.shape == (FRAMES, 1, 25, 3)
        points, confidence = to_h36m(keypoints[:, 0], layout)
        found = (confidence > 0) & own
        assert found.mean() > 0.6 and ((confidence[found] > 0) & (confidence[found] <= 1)).all()
        # the detections lie where the calibration projects the truth, within the detector-like noise
        miss = np.linalg.norm(points - projected[:, v], axis=-1)[found]
        assert np.median(miss) < 1.5 and (miss < 1.5).mean() > 0.6
        capture = cv2.VideoCapture(str(footage / "videos" / f"{name}.mp4"))
        assert (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))) == (FRAMES, 160)
        ok, frame = capture.read()
        assert ok and frame.std() > 10
    assert len(list((footage / "openpose" / "cam1").glob("cam1_*_keypoints.json"))) == FRAMES


def test_bad_options_and_unwritable_folders_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        make_footage(["--out", str(tmp_path), "--frames", "0"])
    assert stop.value.code == 2 and "--frames must be between 1 and 10000, got 0" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert make_footage(["--out", str(blocker / "sub"), "--frames", "1", "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out '{blocker / 'sub'}': cannot write there") and err.count("\n") == 1


def test_the_demo_refuses_a_truth_that_does_not_fit(footage, tmp_path, capsys):
    views = [str(footage / "openpose" / f"cam{v}") for v in range(1, 5)]
    base = ["--calibration", str(footage / "calibration.toml"), "--keypoints", *views, "--layout", "body25",
            "--out", str(tmp_path / "out")]
    np.savez(tmp_path / "short.npz", points_3d_mm=np.zeros((FRAMES - 1, 17, 3)), joint_names=np.array(H36M17.joint_names))
    np.savez(tmp_path / "keys.npz", poses=np.zeros((FRAMES, 17, 3)))
    np.savez(tmp_path / "foreign.npz", points_3d_mm=np.zeros((FRAMES, 2, 3)), joint_names=np.array(["nose", "tail"]))
    (tmp_path / "text.npz").write_text("not an archive")
    cases = {"missing.npz": "does not exist (an npz archive with 'points_3d_mm'",
             "short.npz": f"holds {FRAMES - 1} frames, the footage {FRAMES}",
             "keys.npz": "expected", "text.npz": "cannot be read", "foreign.npz": "none of its joints (nose, tail)"}
    for name, message in cases.items():
        assert demo(base + ["--truth", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --truth '{tmp_path / name}'") and message in err and err.count("\n") == 1, err
    # a truth of some joints only is scored on those
    with np.load(footage / "truth.npz", allow_pickle=False) as archive:
        points = archive["points_3d_mm"]
    np.savez(tmp_path / "some.npz", points_3d_mm=points[:, [13, 16]], joint_names=np.array(["l_wrist", "r_wrist"]))
    assert demo(base + ["--truth", str(tmp_path / "some.npz")]) == 0
    error = json.loads((tmp_path / "out" / "truth_error.json").read_text())
    assert error["joints"] == ["l_wrist", "r_wrist"] and set(error["per_joint_mpjpe_mm"]) == {"l_wrist", "r_wrist"}
    assert error["left_out_approximated"] == [] and error["mpjpe_mm"] < 40.0


def test_a_shorter_clip_in_the_same_folder_replaces_the_longer_ones_frames(tmp_path):
    out = tmp_path / "footage"
    for frames in (5, 3):
        assert make_footage(["--out", str(out), "--frames", str(frames), "--size", "96"]) == 0
    assert len(list((out / "openpose" / "cam1").glob("*_keypoints.json"))) == 3
