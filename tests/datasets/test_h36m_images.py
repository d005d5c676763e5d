"""The Human3.6M image layouts on the tiny fixtures of ``h36m_fixtures`` (never real Human3.6M images)."""
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import load_config
from core.skeleton import H36M17
from datasets import DatasetError, build_dataset
from core.batch import collate_samples
from datasets.h36m_images import (H36MMultiViewImages, read_learnable_triangulation_labels, read_toolbox_annotations,
                                  select_frames)
from tests.datasets.h36m_fixtures import HEAD, pose, project_cv2

def check_sample(sample, frame: int, size: int, tolerance_px: float):
    assert sample["images"].shape == (4, 3, size, size)
    assert sample["keypoints_2d_crop"].shape == (1, 4, H36M17.num_joints, 2) and sample["keypoints_3d"].shape == (1, H36M17.num_joints, 3)
    assert np.allclose(sample["keypoints_3d"][0].numpy(), pose(frame), atol=1e-3)
    # the crop cameras put the 3D head where the warped image shows the disc
    white = sample["images"].mean(1).numpy() > 0.5                     # (V, S, S)
    ys, xs = np.mgrid[:size, :size]
    for v in range(4):
        centroid = np.array([xs[white[v]].mean(), ys[white[v]].mean()])
        assert np.linalg.norm(centroid - sample["keypoints_2d_crop"][0, v, HEAD].numpy()) < tolerance_px
    projected = sample["cameras"].project(sample["keypoints_3d"][0].double().expand(4, -1, -1)).float()
    assert torch.allclose(projected, sample["keypoints_2d_crop"][0], atol=1e-3)


def test_toolbox_cameras_follow_its_convention_and_frames_are_grouped(toolbox):
    _, path = toolbox
    table = read_toolbox_annotations(path)
    assert table.image_paths.shape == (3, 4)                                  # the 3-camera frame is dropped
    assert table.subjects.tolist() == ["S1", "S9", "S9"] and table.actions.tolist() == ["Directions", "Discussion",
                                                                                        "Greeting"]
    for row, frame in ((0, 1), (1, 1)):
        cameras = table.cameras[int(table.camera_set[row])]
        pixels = cameras.project(torch.from_numpy(pose(frame)).expand(4, -1, -1))
        expected = np.stack([project_cv2(pose(frame), c) for c in range(4)])
        assert np.allclose(pixels.numpy(), expected, atol=1e-6)


def test_toolbox_samples_crop_exactly_with_and_without_augmentation(toolbox):
    root, path = toolbox
    table = read_toolbox_annotations(path)
    check_sample(H36MMultiViewImages(table, root / "images", image_size=64)[0], 1, 64, 0.3)
    torch.manual_seed(0)
    augmented = H36MMultiViewImages(table, root / "images", image_size=96, augment=True, rotation_factor=40.0)
    check_sample(augmented[1], 1, 96, 0.4)


def test_learnable_triangulation_labels_match_the_toolbox(toolbox, learnable):
    root, path = learnable
    table = read_learnable_triangulation_labels(path)
    assert table.image_paths.shape == (3, 4) and table.image_paths[0, 1] == \
        "S1/Directions-1/imageSequence/55011271/img_000001.jpg"
    assert table.actions.tolist() == ["Directions", "Discussion", "Greeting"] and table.takes.tolist() == [1, 1, 2]
    check_sample(H36MMultiViewImages(table, root, image_size=64)[2], 1, 64, 0.3)
    other = read_toolbox_annotations(toolbox[1])
    assert np.allclose(table.keypoints_3d, other.keypoints_3d, atol=1e-3)
    assert torch.allclose(table.cameras.projection_matrices, other.cameras.projection_matrices, rtol=1e-5, atol=1e-3)
    undistorted = read_learnable_triangulation_labels(path, undistorted=True)
    assert (undistorted.cameras.dist == 0).all()
    assert undistorted.image_paths[0, 0].startswith("S1/Directions-1/imageSequence-undistorted/")


def config(tmp_path, name, root, file, *extra):
    yaml = tmp_path / "h36m.yaml"
    yaml.write_text(f"DATASETS:\n  NAME: {name}\n  MODE: images\n  H36M_IMAGES:\n    ROOT: {root}\n"
                    f"    TRAIN_FILE: {file}\n    TEST_FILE: {file}\n    IMAGE_SIZE: 64\n"
                    "    TRAIN_SUBJECTS: [S1]\n    TEST_SUBJECTS: [S9]\n")
    return load_config(str(yaml), list(extra))


def test_registered_builders_select_subjects_strides_and_damaged_takes(tmp_path, toolbox, learnable):
    cfg = config(tmp_path, "h36m_toolbox", toolbox[0] / "images", toolbox[1])
    assert len(build_dataset(cfg, "train")) == 1 and len(build_dataset(cfg, "test")) == 1   # S9 Greeting-2 skipped
    cfg = config(tmp_path, "h36m_learnable_triangulation", learnable[0], learnable[1],
                 "DATASETS.H36M_IMAGES.SKIP_DAMAGED", "False", "DATASETS.TEST_STRIDE", "2")
    test = build_dataset(cfg, "test")
    assert len(test) == 1 and test[0]["meta"] == {"subject": "S9", "action": "Discussion 1", "frame": 0,
                                                  "sequence": "S9/Discussion-1"}
    batch = collate_samples([test[0], test[0]])
    assert batch["images"].shape == (2, 4, 3, 64, 64) and batch["cameras"].batch_shape == (2, 4)


def test_bad_files_and_settings_get_clear_errors(tmp_path, toolbox):
    root, path = toolbox
    with pytest.raises(DatasetError, match="ROOT .* is not a folder"):
        build_dataset(config(tmp_path, "h36m_toolbox", tmp_path / "none", path), "train")
    with pytest.raises(DatasetError, match=r"subjects \['S7'\] are not in the file"):
        build_dataset(config(tmp_path, "h36m_toolbox", root / "images", path,
                             "DATASETS.H36M_IMAGES.TRAIN_SUBJECTS", "['S1', 'S7']"), "train")
    with pytest.raises(DatasetError, match="TEST_FILE is empty"):
        build_dataset(config(tmp_path, "h36m_toolbox", root / "images", path, "DATASETS.H36M_IMAGES.TEST_FILE", "''"),
                      "test")
    with pytest.raises(DatasetError, match="image '.*_000001.jpg' is missing or unreadable"):
        H36MMultiViewImages(read_toolbox_annotations(path), tmp_path)[0]

    class Exploit:
        def __reduce__(self):
            return os.system, ("echo pwned",)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"subject": Exploit()}]))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        read_toolbox_annotations(evil)
    records = pickle.loads(path.read_bytes())
    del records[0]["camera"]["fx"]
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(pickle.dumps(records))
    with pytest.raises(DatasetError, match=r"broken\.pkl record \d+ camera: missing key 'fx'"):
        read_toolbox_annotations(broken)
    records = pickle.loads(path.read_bytes())
    records[2]["joints_3d"][4, 1] = np.nan
    holes = tmp_path / "holes.pkl"
    holes.write_bytes(pickle.dumps(records))
    with pytest.raises(DatasetError, match=r"holes\.pkl record \d+: 'joints_3d' has NaN or infinite values"):
        read_toolbox_annotations(holes)
    records = pickle.loads(path.read_bytes())
    for record in records:       # every camera moved to camera 1's centre (rotation kept: t = -R T)
        record["camera"]["T"] = records[0]["camera"]["T"]
    together = tmp_path / "together.pkl"
    together.write_bytes(pickle.dumps(records))
    with pytest.raises(DatasetError, match=r"together\.pkl cameras of S1: the 4 cameras cannot triangulate"):
        read_toolbox_annotations(together)
    (tmp_path / "labels.npy").write_bytes(b"not numpy")
    with pytest.raises(DatasetError, match=r"labels\.npy: not an \.npy file"):
        read_learnable_triangulation_labels(tmp_path / "labels.npy")


def test_select_frames_keeps_every_nth_frame(toolbox):
    table = read_toolbox_annotations(toolbox[1])
    assert select_frames(table, ["S1", "S9"], 2, False, "x").frames.tolist() == [1, 1]


PUBLISHED = {  # config: (annotation layout, fusion residual, decoding radius, fallback step, ground truth)
    "r50_256_baseline": ("toolbox", None, 8, 0.05, "mocap"),
    "r50_256_epipolar_zresidual": ("toolbox", "reference", 8, 0.05, "triangulated"),
    "r50_256_epipolar_zresidual_aug": ("toolbox", "reference", 8, 0.05, "triangulated"),
    "r152_384_epipolar": ("toolbox", "reference", 12, 0.0, "triangulated"),
    "r152_384_algebraic": ("learnable", None, None, 0.0, "mocap"),
}


def _published_config(name, toolbox, learnable, *overrides):
    from pathlib import Path
    layout = PUBLISHED[name][0]
    root, path = toolbox if layout == "toolbox" else learnable
    images = str(root / "images") if layout == "toolbox" else str(root)
    return load_config(str(Path(__file__).parents[2] / "configs" / "h36m" / f"{name}.yaml"), [
        "DATASETS.H36M_IMAGES.ROOT", images, "DATASETS.H36M_IMAGES.TRAIN_FILE", str(path),
        "DATASETS.H36M_IMAGES.TEST_FILE", str(path), "DATASETS.H36M_IMAGES.TEST_SUBJECTS", "['S9']",
        # 128 px crops give the algebraic head's confidence branch the 4 x 4 trunk maps it needs
        "DATASETS.H36M_IMAGES.IMAGE_SIZE", "128" if layout == "learnable" else "64",
        "DATASETS.H36M_IMAGES.UNDISTORTED", "False",
        "MODEL.BACKBONE.PRETRAINED", "none", "DATASETS.TEST_STRIDE", "1", *overrides])


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_configs_build_and_run_on_the_fixture(name, toolbox, learnable):
    from modeling.pipelines import build_pipeline
    cfg = _published_config(name, toolbox, learnable)
    _, residual, radius, fallback, truth = PUBLISHED[name]
    model = build_pipeline(cfg).eval()
    assert (model.fusion.residual if model.fusion is not None else None) == residual
    assert (model.decode_radius if model.decode == "centre_of_mass" else None) == radius
    assert getattr(model.head, "fallback_step", 0.0) == fallback and cfg.TEST.GT_3D == truth
    # the reference's truth and predictions both ignore the lens (pymvg); the mocap truth is met undistorted
    assert getattr(model.head, "undistort", True) == (truth == "mocap")
    with torch.no_grad():
        out = model(collate_samples([build_dataset(cfg, "test")[0]]))
    assert out["pred_3d"].shape == (1, H36M17.num_joints, 3)


def test_the_zresidual_config_runs_the_reference_protocol_end_to_end(tmp_path, toolbox, learnable):
    """main.py on the fixture: the reference residual, centre-of-mass decoding, the truth named in metrics.json."""
    import json

    import main
    from pathlib import Path
    cfg = _published_config("r50_256_epipolar_zresidual", toolbox, learnable)
    args = [a for k, v in (("DATASETS.H36M_IMAGES.ROOT", cfg.DATASETS.H36M_IMAGES.ROOT),
                           ("DATASETS.H36M_IMAGES.TRAIN_FILE", cfg.DATASETS.H36M_IMAGES.TRAIN_FILE),
                           ("DATASETS.H36M_IMAGES.TEST_FILE", cfg.DATASETS.H36M_IMAGES.TEST_FILE)) for a in (k, v)]
    out = tmp_path / "zresidual"
    code = main.main(["--cfg", str(Path(__file__).parents[2] / "configs" / "h36m" / "r50_256_epipolar_zresidual.yaml"),
                      *args, "DATASETS.H36M_IMAGES.TRAIN_SUBJECTS", "['S1']", "DATASETS.H36M_IMAGES.TEST_SUBJECTS",
                      "['S9']", "DATASETS.H36M_IMAGES.IMAGE_SIZE", "64",
                      "MODEL.BACKBONE.PRETRAINED", "none", "DATASETS.TEST_STRIDE", "1", "DATASETS.NUM_WORKERS", "0",
                      "SOLVER.MAX_EPOCHS", "1", "MODEL.BACKBONE.DEPTH", "18", "VIS.PREVIEW_SAMPLES", "0",
                      "OUTPUT_DIR", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ground_truth_3d"].startswith("triangulated: the DLT of the ground-truth 2D")
    saved = load_config(str(out / "config.yaml"), [])
    assert saved.MODEL.FUSION.RESIDUAL == "reference" and saved.MODEL.BACKBONE.DECODE == "centre_of_mass"
    assert saved.MODEL.HEAD.CONFIDENCE_FALLBACK == 0.05


def _damaged(valid: bytes):
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    overwrite = st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=16)).map(
        lambda p: valid[:p[0]] + p[1] + valid[p[0] + len(p[1]):])
    return st.one_of(st.binary(max_size=256), cut, overwrite)


def test_damaged_annotation_files_end_in_dataset_errors(tmp_path, toolbox, learnable):
    """Fuzzed (hypothesis) annotation files of both layouts raise DatasetError, never another exception."""
    seeds = {"h36m_train.pkl": (toolbox[1].read_bytes(), read_toolbox_annotations),
             "labels.npy": (learnable[1].read_bytes(), read_learnable_triangulation_labels)}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=st.sampled_from(sorted(seeds)), data=st.data())
    def check(name, data):
        valid, read = seeds[name]
        path = tmp_path / name
        path.write_bytes(data.draw(_damaged(valid)))
        try:
            read(path)
        except DatasetError:
            pass

    check()


def test_a_table_dtype_with_an_unreadable_field_is_a_dataset_error(tmp_path, learnable):
    # found by the fuzz test above: one byte of the pickled dtype makes 'subject_idx' listed but unreadable
    valid = learnable[1].read_bytes()
    path = tmp_path / "labels.npy"
    path.write_bytes(valid[:1704] + b"K" + valid[1705:])
    with pytest.raises(DatasetError, match="fields of 'table' or 'cameras' cannot be read"):
        read_learnable_triangulation_labels(path)


def test_an_image_config_without_network_checks_the_data_first_then_says_how_to_give_weights(
        tmp_path, toolbox, monkeypatch, capsys):
    """configs/h36m/r50_256_baseline.yaml asks for the ImageNet weights; the download is made to fail here."""
    import urllib.error
    from pathlib import Path

    import torchvision

    import main
    attempts = []

    def offline(self, *args, **kwargs):
        attempts.append(self)
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    config = str(Path(__file__).parents[2] / "configs" / "h36m" / "r50_256_baseline.yaml")
    out = tmp_path / "out"
    assert main.main(["--cfg", config, "OUTPUT_DIR", str(out)]) == 2
    assert capsys.readouterr().err == "error: DATASETS.H36M_IMAGES.TEST_FILE is empty: set it to the test annotation " \
                                      "file\n"
    assert not attempts                                  # the data was checked before the weights were fetched
    root, path = toolbox
    data = ["DATASETS.H36M_IMAGES.ROOT", str(root / "images"), "DATASETS.H36M_IMAGES.TRAIN_FILE", str(path),
            "DATASETS.H36M_IMAGES.TEST_FILE", str(path), "DATASETS.H36M_IMAGES.TEST_SUBJECTS", "['S9']",
            "DATASETS.H36M_IMAGES.TRAIN_SUBJECTS", "['S5']", "MODEL.BACKBONE.DEPTH", "18"]
    assert main.main(["--cfg", config, *data, "OUTPUT_DIR", str(out)]) == 2   # the training data is checked first
    assert "subjects ['S5'] are not in the file" in capsys.readouterr().err and not attempts
    data[data.index("['S5']")] = "['S1']"
    assert main.main(["--cfg", config, *data, "OUTPUT_DIR", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MODEL.BACKBONE: PRETRAINED imagenet: could not get the ImageNet weights of resnet18 "
                          "from torchvision (<urlopen error no network>); download https://") and err.count("\n") == 1
    assert "give the file as MODEL.BACKBONE.PRETRAINED /path/to/resnet18-" in err
    assert err.endswith("or train from scratch with MODEL.BACKBONE.PRETRAINED none\n")
    assert len(attempts) == 1 and not out.exists()
