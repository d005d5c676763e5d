"""Human3.6M keypoints in the VideoPose3D format, on the tiny npz fixtures of ``h36m_fixtures`` (and the real
Human3.6M cameras from ../shared when present)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import load_config
from core.skeleton import H36M17
from datasets import DatasetError, build_dataset
from core.batch import collate_samples
from datasets.formats.videopose3d import CAMERA_IDS, H36M_32_TO_17
from datasets.synthetic.rigs import h36m_like_ring
from tests.datasets.h36m_fixtures import walking_person, write_cameras, write_dataset

def config(root, *overrides):
    return load_config(None, ["DATASETS.NAME", "h36m", "DATASETS.H36M.ROOT", str(root), "DATASETS.H36M.KEYPOINTS",
                              "gt", "DATASETS.H36M.TRAIN_SUBJECTS", "['S1']", "DATASETS.H36M.TEST_SUBJECTS", "['S9']",
                              *overrides])


def test_multi_view_windows_hold_every_camera_of_one_frame(h36m_root):
    cfg = config(h36m_root, "DATASETS.FRAMES", "9", "DATASETS.TRAIN_STRIDE", "5")
    train = build_dataset(cfg, "train")
    assert len(train) == 8 + 6
    sample = train[0]
    assert sample["keypoints_2d"].shape == (9, 4, H36M17.num_joints, 2) and sample["keypoints_3d"].shape == (9, H36M17.num_joints, 3)
    # frame 0 of the take: the window is edge-padded, and each view's 2D is that frame's projection
    assert torch.equal(sample["keypoints_3d"][0], sample["keypoints_3d"][4])
    projected = sample["cameras"].project(sample["keypoints_3d"][4].double().expand(4, -1, -1))
    assert torch.allclose(sample["keypoints_2d"][4].double(), projected, atol=1e-2)
    assert torch.allclose(sample["keypoints_2d"], sample["keypoints_2d_gt"], atol=1e-2)
    assert sample["meta"] == {"subject": "S1", "action": "Walking", "frame": 0, "sequence": "S1/Walking"}
    assert sample["frame_ids"].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4] and train.num_frames == 70
    assert train[8]["frame_ids"].tolist() == [40] * 5 + [41, 42, 43, 44]   # frame 0 of the second take
    expected_mm = walking_person(40, 0)[0, list(H36M_32_TO_17)] * 1000
    np.testing.assert_allclose(sample["keypoints_3d"][4].numpy(), expected_mm, rtol=1e-5)
    test = build_dataset(cfg, "test")
    assert len(test) == 25 and test[0]["meta"]["action"] == "Walking 1"


def test_single_view_samples_and_action_selection(h36m_root):
    cfg = config(h36m_root, "DATASETS.VIEWS", "single", "DATASETS.H36M.ACTIONS", "['Eating']")
    train = build_dataset(cfg, "train")
    assert len(train) == 30 * 4
    batch = collate_samples([train[i] for i in range(8)])
    assert batch["keypoints_2d"].shape == (8, 1, 1, H36M17.num_joints, 2)
    assert batch["meta"]["sequence"][:5] == ["S1/Eating 2/cam0", "S1/Eating 2/cam1", "S1/Eating 2/cam2",
                                             "S1/Eating 2/cam3", "S1/Eating 2/cam0"]
    skipped = build_dataset(config(h36m_root, "DATASETS.H36M.SKIP_TAKES", "['S1/Walking']"), "train")
    assert {seq.name for seq in skipped.sequences} == {"S1/Eating 2"}


def test_flip_augmentation_mirrors_2d_3d_and_cameras_together(h36m_root):
    torch.manual_seed(0)
    train = build_dataset(config(h36m_root, "DATASETS.FLIP", "True", "DATASETS.FRAMES", "3"), "train")
    samples = [train[i] for i in range(0, len(train), 5)]
    flipped = [s for s in samples if bool(s["flipped"])]
    assert 0 < len(flipped) < len(samples)
    for sample in flipped:
        projected = sample["cameras"].project(sample["keypoints_3d"].double().reshape(1, -1, 3).expand(4, -1, -1))
        assert torch.allclose(sample["keypoints_2d"].double().transpose(0, 1).reshape(4, -1, 2), projected, atol=1e-2)
    assert not build_dataset(config(h36m_root, "DATASETS.FLIP", "True"), "test").flip


def test_bad_inputs_name_the_file_or_key(h36m_root, tmp_path_factory):
    with pytest.raises(DatasetError, match="DATASETS.H36M.ROOT '.*nowhere' is not a folder"):
        build_dataset(config(h36m_root / "nowhere"), "train")
    with pytest.raises(DatasetError, match=r"data_2d_h36m_cpn\.npz"):
        build_dataset(config(h36m_root, "DATASETS.H36M.KEYPOINTS", "cpn"), "train")
    with pytest.raises(DatasetError, match="no subject.* S6"):
        build_dataset(config(h36m_root, "DATASETS.H36M.TRAIN_SUBJECTS", "['S1', 'S6']"), "train")
    with pytest.raises(DatasetError, match="no takes left"):
        build_dataset(config(h36m_root, "DATASETS.H36M.ACTIONS", "['Sitting']"), "train")
    other = tmp_path_factory.mktemp("cams") / "cams.json"
    write_cameras(other, h36m_like_ring(4), ["S1"])
    with pytest.raises(DatasetError, match="DATASETS.H36M.CAMERAS: .*no extrinsics for subject 'S9'"):
        build_dataset(config(h36m_root, "DATASETS.H36M.CAMERAS", str(other)), "test")
    with pytest.raises(DatasetError, match="DATASETS.MODE keypoints"):
        build_dataset(config(h36m_root, "DATASETS.MODE", "images"), "train")


def test_the_real_human36m_cameras_project_the_3d_onto_the_2d(tmp_path, shared_data):
    shared_cameras = shared_data("h36m/camera-parameters.json")
    from datasets.formats.calibration import read_h36m_cameras
    rig = read_h36m_cameras(shared_cameras, "S9", CAMERA_IDS)[0]
    write_dataset(tmp_path, rig, cameras_file=shared_cameras)
    cfg = config(tmp_path, "DATASETS.H36M.CAMERAS", str(shared_cameras), "DATASETS.H36M.TEST_SUBJECTS", "['S9']")
    sample = build_dataset(cfg, "test")[3]
    assert sample["cameras"].image_size[0].tolist() == [1000.0, 1002.0]
    assert torch.allclose(sample["keypoints_2d"], sample["keypoints_2d_gt"], atol=1e-2)


POSEFORMER_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "h36m").glob("poseformer_*.yaml"))


def test_the_published_poseformer_settings_build_and_run_on_the_fixture(h36m_root):
    import main
    from modeling.pipelines import build_pipeline
    assert len(POSEFORMER_CONFIGS) == 6
    sizes = {9: 9_563_645, 27: 9_573_455, 81: 9_602_885}
    for path in POSEFORMER_CONFIGS:
        cfg = load_config(str(path))
        assert cfg.TEST.FLIP and cfg.DATASETS.FLIP and cfg.DATASETS.NAME == "h36m"
        assert sum(p.numel() for p in build_pipeline(cfg).parameters()) == sizes[cfg.DATASETS.FRAMES]
    out = h36m_root / "out"
    code = main.main(["--cfg", str(POSEFORMER_CONFIGS[0]), "DATASETS.H36M.ROOT", str(h36m_root), "DATASETS.H36M.KEYPOINTS",
                      "gt", "DATASETS.H36M.TRAIN_SUBJECTS", "['S1']", "DATASETS.H36M.TEST_SUBJECTS", "['S9']",
                      "DATASETS.NUM_WORKERS", "0", "DATASETS.FRAMES", "9", "MODEL.LIFTER.POSEFORMER.DEPTH", "1",
                      "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "SOLVER.MAX_EPOCHS", "1", "SOLVER.BATCH_SIZE", "32",
                      "OUTPUT_DIR", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 25 * 4 and set(metrics["mpjpe_root_relative_mm"]["per_action"]) == {"Walking"}


def test_the_published_esmformer_settings_build_and_run_on_the_fixture(h36m_root):
    import main
    configs = sorted((Path(__file__).resolve().parents[2] / "configs" / "h36m").glob("esmformer_*.yaml"))
    assert len(configs) == 4
    for path in configs:
        cfg = load_config(str(path))
        assert cfg.DATASETS.FRAMES == 27 and cfg.DATASETS.VIEWS == "all" and cfg.SOLVER.OPTIMIZER == "amsgrad"
        assert cfg.MODEL.LIFTER.ERROR_AWARE == cfg.MODEL.LIFTER.SELF_SUPERVISED
    selfsup = next(p for p in configs if p.name == "esmformer_27f_gt_selfsup.yaml")
    out = h36m_root / "out"
    code = main.main(["--cfg", str(selfsup), "DATASETS.H36M.ROOT", str(h36m_root), "DATASETS.H36M.TRAIN_SUBJECTS",
                      "['S1']", "DATASETS.H36M.TEST_SUBJECTS", "['S9']", "DATASETS.NUM_WORKERS", "0",
                      "DATASETS.FRAMES", "9", "DATASETS.TRAIN_STRIDE", "10", "DATASETS.TEST_STRIDE", "5",
                      "SOLVER.MAX_EPOCHS", "1", "SOLVER.BATCH_SIZE", "4", "SOLVER.LOG_PERIOD", "1", "OUTPUT_DIR", str(out)])
    assert code == 0
    log = (out / "log.txt").read_text()
    assert "triangulation" in log and "reprojection" in log
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 5 and np.isfinite(metrics["mpjpe_root_relative_mm"]["frame_avg"])
    assert "error_weights._extra_state" in torch.load(out / "model_final.pth", weights_only=True)["model"]
    # the checkpoint, with its per-frame weights, loads again for a test-only run
    code = main.main(["--cfg", str(out / "config.yaml"), "DOTRAIN", "False", "WEIGHTS", str(out / "model_final.pth"),
                      "OUTPUT_DIR", str(h36m_root / "retest")])
    assert code == 0
    assert json.loads((h36m_root / "retest" / "metrics.json").read_text()) == metrics


def rewrite(path: Path, key: str, edit):
    """Load an npz fixture, change one take with ``edit`` and save it again."""
    archive = dict(np.load(path, allow_pickle=True))
    data = archive[key].item()
    edit(data)
    archive[key] = data
    np.savez_compressed(path, **archive)


def test_missing_views_and_bad_2d_are_named(h36m_root):
    rewrite(h36m_root / "data_2d_h36m_gt.npz", "positions_2d", lambda d: d["S1"]["Walking"].pop())
    with pytest.raises(DatasetError, match=r"data_2d_h36m_gt\.npz: S1 'Walking' has 2D for 3 cameras, expected 4"):
        build_dataset(config(h36m_root), "train")
    write_dataset(h36m_root, h36m_like_ring(4))

    def shorten(d):
        d["S1"]["Walking"][2] = d["S1"]["Walking"][2][:30]
    rewrite(h36m_root / "data_2d_h36m_gt.npz", "positions_2d", shorten)
    with pytest.raises(DatasetError, match="S1 'Walking' camera 2 has 30 frames of 2D for 40 frames of 3D"):
        build_dataset(config(h36m_root), "train")
    write_dataset(h36m_root, h36m_like_ring(4))

    def hole(d):
        d["S1"]["Eating 2"][1][7, 3] = np.nan
    rewrite(h36m_root / "data_2d_h36m_gt.npz", "positions_2d", hole)
    with pytest.raises(DatasetError, match=r"S1/Eating 2 has 1 NaN or infinite input 2D joints \(the first: frame 7, "
                                           r"view 1, joint r_ankle\)"):
        build_dataset(config(h36m_root), "train")


def test_missing_3d_joints_are_counted_and_left_out_of_losses_and_metrics(h36m_root, epipose_log):
    import main

    def lose_markers(d):
        d["S1"]["Walking"][5:8, 25] = np.nan         # the right shoulder (32-joint index 25), 3 frames
        d["S9"]["Walking 1"][2, 0] = np.nan          # the pelvis of one test frame
        d["S9"]["Walking 1"][4, 27] = np.nan         # the right wrist of another
    rewrite(h36m_root / "data_3d_h36m.npz", "positions_3d", lose_markers)
    train = build_dataset(config(h36m_root, "DATASETS.VIEWS", "single"), "train")
    assert train.num_missing_joints == 3 and "3 of 1190 target joints are missing (NaN in the 3D), 0 of them the root (pelvis)" in epipose_log.text
    out = h36m_root / "out"
    linear = Path(__file__).resolve().parents[2] / "configs" / "h36m" / "linear_gt.yaml"
    code = main.main(["--cfg", str(linear), "DATASETS.H36M.ROOT", str(h36m_root),
                      "DATASETS.H36M.TRAIN_SUBJECTS", "['S1']", "DATASETS.H36M.TEST_SUBJECTS", "['S9']",
                      "DATASETS.VAL_SUBJECTS", "[]", "DATASETS.NUM_WORKERS", "0", "MODEL.LIFTER.LINEAR.HIDDEN", "16",
                      "SOLVER.MAX_EPOCHS", "2", "SOLVER.BATCH_SIZE", "16", "OUTPUT_DIR", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # 25 test frames x 4 views; the pelvis-less frame has no root-relative target in any view
    assert metrics["num_poses"] == 100 and metrics["num_masked_joints"] == 4 * 17 + 4
    assert metrics["mpjpe_root_relative_mm"]["num_joint_errors"] == 100 * 17 - 4 * 17 - 4
    assert np.isfinite(metrics["mpjpe_root_relative_mm"]["frame_avg"])
    assert all(torch.isfinite(v).all() for v in torch.load(out / "model_final.pth", weights_only=True)["model"].values()
               if v.is_floating_point())


def test_camera_translations_in_metres_stop_the_run_naming_the_units(h36m_root, capsys):
    import main
    path = h36m_root / "camera-parameters.json"
    cameras = json.loads(path.read_text())
    for per_camera in cameras["extrinsics"].values():
        for extrinsics in per_camera.values():
            extrinsics["t"] = (np.array(extrinsics["t"]) / 1000).tolist()
    path.write_text(json.dumps(cameras))
    out = h36m_root / "out"
    dlt = Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "dlt_noisy2d.yaml"
    code = main.main(["--cfg", str(dlt), "DATASETS.NAME", "h36m", "DATASETS.H36M.ROOT", str(h36m_root),
                      "DATASETS.H36M.KEYPOINTS", "gt", "DATASETS.H36M.TEST_SUBJECTS", "['S9']", "OUTPUT_DIR", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "\n" not in err
    # the size of the person comes from the 3D of the subject (the fixture's is 1.3 m from feet to head)
    assert re.fullmatch(r"error: DATASETS\.H36M\.CAMERAS: '.*camera-parameters\.json' cameras of S9: the 4 cameras "
                        r"cannot triangulate a person of 1307 mm: their centres lie within 9\.99 mm of each other, 26 "
                        r"mm or more expected; the translations look like metres where millimetres \(extrinsics t\) "
                        r"are expected", err), err


def add_scores(root: Path, score):
    """Give every 2D array of the fixture a third channel: ``score(subject, action, camera, (T, J) shape)``."""
    def edit(d):
        for subject, actions in d.items():
            for action, views in actions.items():
                actions[action] = [np.concatenate([v, score(subject, action, c, v.shape[:2])[..., None]], -1)
                                   .astype(np.float32) for c, v in enumerate(views)]
    rewrite(root / "data_2d_h36m_gt.npz", "positions_2d", edit)


def test_detector_scores_become_the_confidences_the_weighted_dlt_uses(h36m_root):
    from modeling.pipelines import build_pipeline
    rng = np.random.default_rng(3)
    add_scores(h36m_root, lambda s, a, c, shape: rng.uniform(0.6, 1.0, shape) if c != 2 else np.zeros(shape))

    def garble(d):           # camera 2's 2D is far off, but its scores say the detector saw nothing there
        d["S9"]["Walking 1"][2][..., :2] += 200.0
    rewrite(h36m_root / "data_2d_h36m_gt.npz", "positions_2d", garble)
    test = build_dataset(config(h36m_root), "test")
    scores = np.load(h36m_root / "data_2d_h36m_gt.npz", allow_pickle=True)["positions_2d"].item()["S9"]["Walking 1"]
    assert torch.equal(test[4]["confidence_2d"][0], torch.from_numpy(np.stack([v[4, :, 2] for v in scores])))
    batch = collate_samples([test[i] for i in range(len(test))])
    errors = {}
    for weighted, threshold in (("False", "0.0"), ("True", "0.0"), ("False", "0.5")):
        model = build_pipeline(config(h36m_root, "MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.CONFIDENCE_WEIGHTED", weighted,
                                      "MODEL.HEAD.MIN_CONFIDENCE", threshold))
        with torch.no_grad():
            out = model(batch)
        errors[weighted, threshold] = (out["pred_3d"] - model.targets(batch)["target_3d"]).norm(dim=-1).mean().item()
    # camera 2's garbage spoils the plain DLT; its scores leave it out of the weighted one and below a threshold
    assert errors["True", "0.0"] < 0.1 and errors["False", "0.5"] < 0.1 and errors["False", "0.0"] > 50, errors


@pytest.mark.parametrize("bad", [1.2, np.nan])
def test_scores_outside_0_1_are_a_dataset_error_naming_the_take(h36m_root, bad):
    def score(subject, action, camera, shape):
        values = np.full(shape, 0.9)
        if (subject, action, camera) == ("S1", "Eating 2", 3):
            values[7, 0] = bad
        return values
    add_scores(h36m_root, score)
    with pytest.raises(DatasetError, match=r"data_2d_h36m_gt\.npz: positions_2d\['S1'\]\['Eating 2'\]\[3\]: 1 scores "
                                           r"outside \[0, 1\] or NaN \(the first: frame 7, joint pelvis"):
        build_dataset(config(h36m_root), "train")


def test_warnings_while_the_data_is_read_also_reach_the_log_file(h36m_root, capsys):
    import main
    path = h36m_root / "camera-parameters.json"
    cameras = json.loads(path.read_text())
    for per_camera in cameras["extrinsics"].values():   # camera 2 moved to 3 mm beside camera 1
        first, second = (per_camera[c] for c in CAMERA_IDS[:2])
        centre = -np.array(first["R"]).T @ np.array(first["t"])
        second["t"] = (-np.array(second["R"]) @ (centre + np.array([[3.0], [0.0], [0.0]]))).tolist()
    path.write_text(json.dumps(cameras))
    out = h36m_root / "out"
    dlt = Path(__file__).resolve().parents[2] / "configs" / "synthetic" / "dlt_noisy2d.yaml"
    code = main.main(["--cfg", str(dlt), "DATASETS.NAME", "h36m", "DATASETS.H36M.ROOT", str(h36m_root),
                      "DATASETS.H36M.KEYPOINTS", "gt", "DATASETS.H36M.TEST_SUBJECTS", "['S9']", "OUTPUT_DIR", str(out)])
    assert code == 0
    warning = f"cameras {CAMERA_IDS[0]} and {CAMERA_IDS[1]} are 3.0 mm apart"
    assert warning in capsys.readouterr().err
    assert warning in (out / "log.txt").read_text()
