"""The multi-view demo (scripts/demo_multiview.py, scripts/multiview_demo_steps.py, datasets/footage.py) on a
synthetic scene with known 3D, its errors, and (when ../shared is there) on the real Pose2Sim recording."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.geometry.association import associate_people
from core.smoothing import smooth_trajectories
from core.vis import BORDER_PX, LEGEND_ROW_PX
from core.images import to_uint8_images
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from scripts.demo_multiview import main as demo

FRAMES = 6


def scene():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=FRAMES,
                                     noise=DetectorNoise.none()))
    seq = world.sequences[0]
    points = torch.from_numpy(seq.keypoints_3d).double()
    pixels = seq.cameras.project(points[:, None]).numpy()                                # T, V, J, 2
    return seq.cameras, points.numpy(), pixels


def _list(values) -> str:
    return "[" + ", ".join(_list(v) if np.ndim(v) else repr(float(v)) for v in values) + "]"


def write_toml(path, cameras, same_place=False):
    tables = []
    for v in range(len(cameras)):
        rvec = cv2.Rodrigues(cameras.R[v].numpy())[0].ravel()
        t = cameras.t[0 if same_place else v].numpy() / 1000.0
        if same_place:  # every camera at camera 0's centre, looking its own way
            t = -(cameras.R[v].numpy() @ cameras.centers[0].numpy()) / 1000.0
        tables.append(f'[cam_{v}]\nname = "cam_{v}"\nsize = {_list(cameras.image_size[v].numpy())}\n'
                      f'matrix = {_list(cameras.K[v].numpy())}\ndistortions = {_list(cameras.dist[v].numpy())}\n'
                      f'rotation = {_list(rvec)}\ntranslation = {_list(t)}\nfisheye = false\n')
    Path(path).write_text("\n".join(tables))
    return path


def write_openpose(folder, people_per_frame):
    """people_per_frame: T lists of (J, 3) arrays (x, y, confidence), written as one OpenPose JSON per frame."""
    folder.mkdir(parents=True)
    for t, people in enumerate(people_per_frame):
        (folder / f"view.{t:04d}.json").write_text(json.dumps(
            {"people": [{"pose_keypoints_2d": p.ravel().tolist()} for p in people]}))
    return folder


def write_inputs(tmp_path, cameras, pixels, decoy_view=1, images=True):
    """Exact 2D in the Human3.6M layout for every view; one view also sees a more confident decoy person."""
    rng = np.random.default_rng(0)
    sources, videos = [], []
    for v in range(pixels.shape[1]):
        frames = []
        for t in range(len(pixels)):
            people = [np.c_[pixels[t, v], np.full(17, 0.8)]]
            if v == decoy_view:
                people.insert(0, np.c_[pixels[t, v] + rng.uniform(-300, 300, 2), np.full(17, 0.95)])
            frames.append(people)
        sources.append(str(write_openpose(tmp_path / f"kp{v}", frames)))
        if images:
            folder = tmp_path / f"img{v}"
            folder.mkdir()
            w, h = cameras.image_size[v].int().tolist()
            for t in range(len(pixels)):
                cv2.imwrite(str(folder / f"{t:04d}.png"), np.full((h, w, 3), 60 + 40 * v, np.uint8))
            videos.append(str(folder))
    return sources, videos


def test_demo_recovers_a_known_scene_from_exact_2d(tmp_path):
    cameras, truth, pixels = scene()
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    sources, videos = write_inputs(tmp_path, cameras, pixels)
    out = tmp_path / "out"
    assert demo(["--calibration", str(calibration), "--keypoints", *sources, "--layout", "h36m", "--videos", *videos,
                 "--out", str(out), "--view-height", "100", "--fps", "10"]) == 0
    result = np.load(out / "poses_3d.npz")
    assert result["valid"].all()
    assert np.abs(result["points_3d_mm"] - truth).max() < 1.0           # < 1 mm from exact 2D
    assert (result["person"][:, 1] == 1).all()                          # the decoy (detection 0) was left out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["median_reprojection_error_px"] < 0.01 and summary["approximated_joints"] == []
    frames = json.loads((out / "poses_3d.json").read_text())["frames"]
    assert len(frames) == FRAMES and np.allclose(frames[2]["joints_mm"], truth[2], atol=0.01)
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 100 + BORDER_PX + LEGEND_ROW_PX  # the views over the legend
    assert int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 5 * 100 + 4 * BORDER_PX  # four square views and the 3D panel
    assert (out / "overlay_still.png").is_file() and not list(out.glob(".*"))  # no temporary file left


def run_expecting_error(capsys, args) -> str:
    assert demo(args) == 2
    return capsys.readouterr().err


def test_demo_errors(tmp_path, capsys):
    cameras, _, pixels = scene()
    calibration = str(write_toml(tmp_path / "calib.toml", cameras))
    sources, videos = write_inputs(tmp_path, cameras, pixels, images=False)
    out = ["--out", str(tmp_path / "out"), "--layout", "h36m"]
    err = run_expecting_error(capsys, ["--calibration", calibration, "--keypoints", *sources[:3], *out])
    assert "4 cameras (cam_0, cam_1, cam_2, cam_3) but 3 keypoint sources" in err and "without one: cam_3" in err
    short = write_openpose(tmp_path / "short", [[np.c_[pixels[0, 3], np.ones(17)]]])
    err = run_expecting_error(capsys, ["--calibration", calibration, "--keypoints", *sources[:3], str(short), *out])
    assert "disagree on the number of frames" in err and "'cam_3': 1" in err
    odd = write_openpose(tmp_path / "odd", [[np.ones((20, 3))]] * FRAMES)
    err = run_expecting_error(capsys, ["--calibration", calibration, "--keypoints", *sources[:3], str(odd),
                                       "--out", str(tmp_path / "out")])
    assert "20 keypoints per person is not a known layout" in err
    together = str(write_toml(tmp_path / "together.toml", cameras, same_place=True))
    err = run_expecting_error(capsys, ["--calibration", together, "--keypoints", *sources, *out])
    assert "cannot triangulate" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_association_prefers_the_consistent_person():
    cameras, _, pixels = scene()
    keypoints = torch.full((FRAMES, 4, 2, 17, 2), float("nan"), dtype=torch.float64)
    keypoints[:, :, 1] = torch.from_numpy(pixels)
    keypoints[:, 2, 0] = torch.from_numpy(pixels[:, 2]) + 150.0          # view 2: a confident decoy first
    confidence = torch.zeros(FRAMES, 4, 2, 17, dtype=torch.float64)
    confidence[:, :, 1] = 0.7
    confidence[:, 2, 0] = 0.9
    confidence[0, 3] = 0.0                                                # view 3 sees nobody in frame 0
    choice = associate_people(keypoints, confidence, cameras)
    assert (choice[:, :3] == 1).all() and choice[0, 3] == -1 and (choice[1:, 3] == 1).all()


def test_smoothing_keeps_constants_and_gaps_and_reduces_noise():
    torch.manual_seed(0)
    constant = torch.full((20, 2, 3), 5.0, dtype=torch.float64)
    constant[7, 1] = float("nan")
    smoothed = smooth_trajectories(constant, 2.0)
    assert torch.isnan(smoothed[7, 1]).all() and torch.allclose(smoothed[~torch.isnan(constant)],
                                                                torch.tensor(5.0, dtype=torch.float64))
    line = torch.linspace(0, 1, 200, dtype=torch.float64)[:, None, None].expand(200, 1, 3)
    noisy = line + 0.05 * torch.randn(200, 1, 3, dtype=torch.float64)
    error = lambda x: (x - line)[20:-20].abs().mean()  # noqa: E731
    assert error(smooth_trajectories(noisy, 3.0)) < 0.4 * error(noisy)
    assert torch.equal(smooth_trajectories(noisy, 0.0), noisy)


@pytest.mark.slow  # an end-to-end run (a training, or the whole demo on a real recording)
def test_demo_on_the_real_pose2sim_recording(tmp_path, shared_data):
    pose2sim = shared_data("pose2sim")
    keypoints = [str(pose2sim / "openpose" / f"cam0{i}_json") for i in range(1, 5)]
    assert demo(["--calibration", str(pose2sim / "calibration" / "Calib_qualisys.toml"), "--keypoints", *keypoints,
                 "--layout", "body25b", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 100 and summary["valid_joints"] > 0.95 * summary["joints"]
    assert summary["median_reprojection_error_px_inliers"] < 10.0
    assert summary["approximated_joints"] == ["pelvis", "spine", "thorax", "neck", "head"]
    optimised = tmp_path / "optimised"
    assert demo(["--calibration", str(pose2sim / "calibration" / "Calib_qualisys.toml"), "--keypoints", *keypoints,
                 "--layout", "body25b", "--out", str(optimised), "--optimise"]) == 0
    after = json.loads((optimised / "summary.json").read_text())
    smoothed = tmp_path / "smoothed"
    assert demo(["--calibration", str(pose2sim / "calibration" / "Calib_qualisys.toml"), "--keypoints", *keypoints,
                 "--layout", "body25b", "--out", str(smoothed), "--smooth", "1"]) == 0
    smooth = json.loads((smoothed / "summary.json").read_text())
    # measured: 6.61 px RANSAC, 6.82 px smoothed (sigma 1), 6.37 px optimised; bone-length std 18.8, 14.1, 2.9 mm
    assert after["before_optimisation"]["median_reprojection_error_px_inliers"] == \
        summary["median_reprojection_error_px_inliers"]
    assert after["median_reprojection_error_px_inliers"] < smooth["median_reprojection_error_px_inliers"]
    assert after["median_reprojection_error_px_inliers"] < summary["median_reprojection_error_px_inliers"]
    assert after["bone_length_std_mm_median"] < 0.3 * smooth["bone_length_std_mm_median"]
    assert after["valid_joints"] >= summary["valid_joints"]


def test_optimise_refines_noisy_2d_holds_the_bones_and_fills_a_gap(tmp_path, capsys):
    cameras, truth, pixels = scene()
    rng = np.random.default_rng(1)
    noisy = pixels + rng.normal(0.0, 3.0, pixels.shape)
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    sources, _ = write_inputs(tmp_path, cameras, noisy, decoy_view=-1, images=False)
    for path in sorted(Path(sources[0]).glob("*.json"))[2:4]:   # frames 2, 3: the left wrist seen by view 0 alone
        for source in sources[1:]:
            other = Path(source) / path.name
            data = json.loads(other.read_text())
            keypoints = np.array(data["people"][0]["pose_keypoints_2d"]).reshape(17, 3)
            keypoints[13, 2] = 0.0
            data["people"][0]["pose_keypoints_2d"] = keypoints.ravel().tolist()
            other.write_text(json.dumps(data))
    common = ["--calibration", str(calibration), "--keypoints", *sources, "--layout", "h36m"]
    assert demo([*common, "--out", str(tmp_path / "plain")]) == 0
    assert demo([*common, "--out", str(tmp_path / "optimised"), "--optimise"]) == 0
    plain, optimised = (np.load(tmp_path / name / "poses_3d.npz") for name in ("plain", "optimised"))
    assert not plain["valid"][2:4, 13].any() and optimised["valid"].all()          # the gap is filled
    error = lambda p: np.nanmean(np.linalg.norm(p - truth, axis=-1))  # noqa: E731
    assert error(optimised["points_3d_mm"]) < error(plain["points_3d_mm"])
    assert np.linalg.norm(optimised["points_3d_mm"][2:4, 13] - truth[2:4, 13], axis=-1).max() < 40.0
    summary = json.loads((tmp_path / "optimised" / "summary.json").read_text())
    before = summary["before_optimisation"]
    assert summary["bone_length_std_mm_median"] < 0.5 * before["bone_length_std_mm_median"]
    assert before["valid_joints"] == FRAMES * 17 - 2 and summary["valid_joints"] == FRAMES * 17
    assert set(summary["bone_length_std_mm_per_bone"]) == set(before["bone_length_std_mm_per_bone"])
    assert "before_optimisation" not in json.loads((tmp_path / "plain" / "summary.json").read_text())
    capsys.readouterr()
    assert demo([*common, "--out", str(tmp_path / "both"), "--optimise", "--smooth", "2"]) == 2
    assert "--smooth and --optimise: choose one" in capsys.readouterr().err


@pytest.mark.slow  # an end-to-end run (a training, or the whole demo on a real recording)
def test_a_trained_lifter_fills_the_joints_triangulation_misses(tmp_path, capsys):
    import main
    lifter = tmp_path / "lifter"
    world = ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "60",
             "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5','S6']", "DATASETS.VAL_SUBJECTS", "[]",
             "VIS.PREVIEW_SAMPLES", "0", "MODEL.LIFTER.LINEAR.HIDDEN", "256", "SOLVER.MAX_EPOCHS", "4"]
    assert main.main(["--cfg", str(Path(__file__).resolve().parents[2] / "configs" / "synthetic" /
                                   "linear_lifter.yaml"), "OUTPUT_DIR", str(lifter), *world]) == 0
    cameras, truth, pixels = scene()
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    sources, _ = write_inputs(tmp_path, cameras, pixels, decoy_view=-1, images=False)
    for v, source in enumerate(sources[1:], start=1):  # the left wrist only seen by view 0
        for path in Path(source).glob("*.json"):
            data = json.loads(path.read_text())
            keypoints = np.array(data["people"][0]["pose_keypoints_2d"]).reshape(17, 3)
            keypoints[13, 2] = 0.0
            data["people"][0]["pose_keypoints_2d"] = keypoints.ravel().tolist()
            path.write_text(json.dumps(data))
    common = ["--calibration", str(calibration), "--keypoints", *sources, "--layout", "h36m"]
    assert demo([*common, "--out", str(tmp_path / "plain")]) == 0
    plain = np.load(tmp_path / "plain" / "poses_3d.npz")
    others = np.arange(17) != 13
    assert not plain["valid"][:, 13].any() and plain["valid"][:, others].all()
    assert demo([*common, "--out", str(tmp_path / "lifted"), "--lifter-run", str(lifter)]) == 0
    lifted = np.load(tmp_path / "lifted" / "poses_3d.npz")
    assert lifted["valid"].all() and lifted["filled"][:, 13].all() and lifted["filled"].sum() == FRAMES
    assert np.allclose(lifted["points_3d_mm"][:, others], plain["points_3d_mm"][:, others])  # blend 0 keeps them
    wrist_error = np.linalg.norm(lifted["points_3d_mm"][:, 13] - truth[:, 13], axis=-1)
    assert wrist_error.max() < 250.0  # a prior from a small lifter, aligned on the 16 triangulated joints
    assert json.loads((tmp_path / "lifted" / "summary.json").read_text())["lifter_filled_joints"] == FRAMES
    dlt = tmp_path / "dlt"
    assert main.main(["--cfg", str(Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "dlt_noisy2d.yaml"),
                      "OUTPUT_DIR", str(dlt), *world[:8]]) == 0
    capsys.readouterr()
    assert demo([*common, "--out", str(tmp_path / "x"), "--lifter-run", str(dlt)]) == 2
    assert "a single-view lifter trained with 3D" in capsys.readouterr().err


class ExactDetector:
    """Stands in for an image pipeline: the crop-pixel projections of the true pose of the current frame."""

    def __init__(self, truth, marked=False):
        self.truth, self.frame, self.crop_scales, self.marked = torch.from_numpy(truth), 0, [], marked

    def detect(self, batch):
        cameras = batch["cameras"][0]
        self.crop_scales.append(float(cameras.K[0, 0, 0]))  # view 0's zoom in each frame
        pixels = cameras.project(self.truth[self.frame].expand(len(cameras), -1, -1))
        if self.marked:  # the crops are cut where their cameras say: the pelvis marker is under its projection
            crops = to_uint8_images(batch["images"][0])
            for crop, (x, y) in zip(crops, pixels[:, 0].round().long().tolist()):
                assert crop[y, x].min() > 200, "the crop image and the crop camera disagree"
        self.frame += 1
        return {"pred_2d": pixels[None].float(), "confidence_2d": torch.ones(1, len(cameras), 17)}


def rendered_scene(tmp_path, side=256):
    """The scene's views rendered as whole frames of side x side pixels, in image folders; cameras to match."""
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=FRAMES,
                                     noise=DetectorNoise.none()))
    seq = world.sequences[0]
    scale = torch.diag(torch.tensor([side / 1000.0, side / 1000.0, 1.0], dtype=torch.float64)).expand(4, 3, 3)
    cameras = seq.cameras.with_affine(scale, (side, side))
    renderer = SyntheticMultiView(world, mode="images", image_size=side)
    folders = []
    for v in range(4):
        (tmp_path / f"frames{v}").mkdir()
        folders.append(str(tmp_path / f"frames{v}"))
    for t in range(FRAMES):
        for v, image in enumerate(renderer.render(seq, t, cameras, seed=t, views=np.arange(4))):
            cv2.imwrite(str(tmp_path / f"frames{v}" / f"{t:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return cameras, seq.keypoints_3d.astype(np.float64), folders


def test_2d_from_a_network_tracks_the_person_and_maps_back_exactly(tmp_path):
    from scripts.multiview_demo_steps import load_footage, reconstruct
    cameras, truth, folders = rendered_scene(tmp_path)
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    detector = ExactDetector(truth)
    footage = load_footage(calibration, [], videos=folders, detector=detector, crop_size=64)
    assert footage.keypoints_2d.shape == (FRAMES, 4, 1, 17, 2) and footage.layout == "h36m"
    recon = reconstruct(footage)
    assert recon.valid.all() and np.abs(recon.points_3d - truth).max() < 1.0
    # the first frame's crop is the whole frame, later ones the square around the person: a larger zoom
    assert len(detector.crop_scales) == FRAMES and min(detector.crop_scales[1:]) > 1.5 * detector.crop_scales[0]


def test_network_crops_match_their_cameras(tmp_path):
    from scripts.multiview_demo_steps import load_footage
    cameras, truth, _ = rendered_scene(tmp_path)
    pelvis = cameras.project(torch.from_numpy(truth[:, None, :1]).expand(FRAMES, 4, 1, 3))[..., 0, :]   # T, V, 2
    folders = []
    for v in range(4):
        folder = tmp_path / f"marked{v}"
        folder.mkdir()
        folders.append(str(folder))
        for t in range(FRAMES):
            image = np.zeros((256, 256, 3), np.uint8)
            cv2.circle(image, tuple(int(round(c)) for c in pelvis[t, v].tolist()), 6, (255, 255, 255), -1)
            cv2.imwrite(str(folder / f"{t:03d}.png"), image)
    detector = ExactDetector(truth, marked=True)
    load_footage(write_toml(tmp_path / "calib.toml", cameras), [], videos=folders, detector=detector, crop_size=64)
    assert detector.frame == FRAMES


@pytest.mark.slow  # an end-to-end run (a training, or the whole demo on a real recording)
def test_demo_with_a_trained_image_pipeline(tmp_path):
    import main
    run = tmp_path / "r18"
    tiny = ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "8",
            "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']",
            "DATASETS.VAL_SUBJECTS", "[]", "DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.TRAIN_STRIDE", "4",
            "SOLVER.MAX_EPOCHS", "1", "MODEL.FUSION.SAMPLES", "8", "VIS.PREVIEW_SAMPLES", "0"]
    assert main.main(["--cfg", str(Path(__file__).resolve().parents[2] / "configs" / "synthetic" /
                                   "r18_epipolar_dlt.yaml"), "OUTPUT_DIR", str(run), *tiny]) == 0
    cameras, _, folders = rendered_scene(tmp_path)
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    out = tmp_path / "out"
    assert demo(["--calibration", str(calibration), "--backbone-run", str(run), "--videos", *folders,
                 "--out", str(out), "--view-height", "64"]) == 0
    assert np.load(out / "poses_3d.npz")["keypoints_2d"].shape == (FRAMES, 4, 17, 2)
    assert (out / "overlay.mp4").is_file()


def test_demo_names_missing_frame_files_and_a_toml_camera_without_its_matrix(tmp_path, capsys):
    cameras, _, pixels = scene()
    calibration = write_toml(tmp_path / "calib.toml", cameras)
    sources, _ = write_inputs(tmp_path, cameras, pixels, images=False)
    args = ["--calibration", str(calibration), "--keypoints", *sources, "--layout", "h36m", "--out", str(tmp_path / "o")]
    for frame in (3, 5):
        (Path(sources[2]) / f"view.{frame:04d}.json").unlink()
    err = run_expecting_error(capsys, args)
    assert err.count("\n") == 1 and err.startswith("error: the cameras' keypoint sources disagree on the number of "
                                                   "frames: {'cam_0': 6, 'cam_1': 6, 'cam_2': 4, 'cam_3': 6}")
    assert err.endswith(f"; cam_2 ('{sources[2]}') has no file for frame(s) 3, 5\n")
    text = calibration.read_text()
    calibration.write_text(text.replace("matrix = ", "matrx = ", 2).replace("matrx = ", "matrix = ", 1))  # cam_1's
    err = run_expecting_error(capsys, args)
    assert err == f"error: '{calibration}' [cam_1]: no key 'matrix' (the 3x3 intrinsic matrix) ('matrx' misspelt?); " \
                  "a camera section needs size, matrix, rotation, translation\n"
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc, where no folder can be made")
def test_an_output_folder_that_cannot_be_made_stops_the_demo_before_any_work(tmp_path, capsys, monkeypatch):
    import scripts.demo_multiview as demo_script

    def no_work(*args, **kwargs):
        raise AssertionError("the inputs were read before the output folder was checked")
    monkeypatch.setattr(demo_script, "load_footage", no_work)
    args = ["--calibration", "calib.toml", "--keypoints", "cam0", "cam1", "--out"]
    err = run_expecting_error(capsys, [*args, "/proc/nope"])
    assert err.startswith("error: output folder '/proc/nope' cannot be created or written (no folder can be made in "
                          "'/proc': ") and err.endswith("); choose another --out\n") and err.count("\n") == 1
    (tmp_path / "file").write_text("x")
    err = run_expecting_error(capsys, [*args, str(tmp_path / "file" / "out")])
    assert err == f"error: output folder '{tmp_path / 'file' / 'out'}': '{tmp_path / 'file'}' is a file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]          # the check leaves nothing behind
