import gc

import numpy as np
import pytest
import torch

from core.config import load_config
from datasets import DatasetError, build_dataset
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise



def world(**kw):
    spec = dict(subjects=["S1"], actions=["walk", "kick"], frames_per_sequence=12, seed=3)
    spec.update(kw)
    return SyntheticWorld(WorldSpec(**spec))


def test_keypoint_samples_have_the_batch_form():
    ds = SyntheticMultiView(world(), frames=3)
    assert len(ds) == 2 * 12
    s = ds[0]
    assert s["keypoints_2d"].shape == (3, 4, 17, 2) and s["keypoints_2d"].dtype == torch.float32
    assert s["confidence_2d"].shape == s["visibility"].shape == (3, 4, 17)
    assert s["keypoints_3d"].shape == (3, 17, 3)
    assert s["cameras"].batch_shape == (4,)
    assert s["meta"] == {"subject": "S1", "action": "walk", "frame": 0, "sequence": "S1/walk/0"}
    # Edge padding: the window centred on frame 0 repeats frame 0.
    assert torch.equal(s["keypoints_3d"][0], s["keypoints_3d"][1])
    batch = collate_samples([ds[0], ds[5]])
    assert batch["keypoints_2d"].shape == (2, 3, 4, 17, 2) and batch["cameras"].batch_shape == (2, 4)
    assert batch["meta"]["frame"] == [0, 5]


def test_exact_2d_is_the_projection_of_the_3d():
    ds = SyntheticMultiView(world())
    s = ds[7]
    projected = s["cameras"].project(s["keypoints_3d"][0].double().expand(4, -1, -1))
    assert torch.allclose(projected.float(), s["keypoints_2d_gt"][0], atol=1e-3)
    # the noisy detections differ from it, by a detector-like amount
    err = (s["keypoints_2d"] - s["keypoints_2d_gt"]).norm(dim=-1)
    assert 0.1 < err.median() < 20


def test_world_is_deterministic_and_seeded():
    a, b, c = world(), world(), world(seed=4)
    assert np.array_equal(a.sequences[1].keypoints_2d, b.sequences[1].keypoints_2d)
    assert not np.allclose(a.sequences[1].keypoints_3d, c.sequences[1].keypoints_3d)


def test_some_joints_are_occluded_but_most_are_seen():
    w = world(subjects=["S1", "S5"], actions=["walk", "bend_reach", "turn"], frames_per_sequence=30)
    visible = np.concatenate([s.visibility for s in w.sequences])
    assert 0.6 < visible.mean() < 0.995


def test_single_view_mode_makes_one_sample_per_view():
    ds = SyntheticMultiView(world(), views="single")
    assert len(ds) == 2 * 12 * 4
    s = ds[5]
    assert s["keypoints_2d"].shape == (1, 1, 17, 2)
    assert int(s["camera_ids"][0]) == 1 and s["meta"]["sequence"] == "S1/walk/0/cam1"


def test_random_rigs_of_three_cameras():
    ds = SyntheticMultiView(world(rig="random", num_cameras=3))
    assert ds[0]["cameras"].batch_shape == (3,)
    assert not torch.equal(ds.world.sequences[0].cameras.R, ds.world.sequences[1].cameras.R)


def test_image_samples_are_crops_with_the_crop_folded_into_k():
    ds = SyntheticMultiView(world(frames_per_sequence=4), mode="images", image_size=64)
    s = ds[2]
    assert s["images"].shape == (4, 3, 64, 64) and s["images"].dtype == torch.float32
    kp = s["keypoints_2d_crop"][0]
    assert (kp > 0).all() and (kp < 64).all()  # the person fills the crop
    projected = s["cameras"].project(s["keypoints_3d"][0].double().expand(4, -1, -1))
    assert torch.allclose(projected.float(), kp, atol=1e-3)
    assert torch.equal(s["images"], ds[2]["images"])  # deterministic rendering
    assert s["images"].std() > 0.2


def test_hdf5_cache_matches_on_the_fly_rendering(tmp_path):
    w = world(frames_per_sequence=3, actions=["jump"])
    live = SyntheticMultiView(w, mode="images", image_size=32)
    cached = SyntheticMultiView(w, mode="images", image_size=32, cache_dir=str(tmp_path))
    files = list(tmp_path.glob("synthetic_*.h5"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp*"))
    for i in range(len(live)):
        assert torch.equal(live[i]["images"], cached[i]["images"])
    SyntheticMultiView(w, mode="images", image_size=32, cache_dir=str(tmp_path))  # reuses the file
    assert list(tmp_path.glob("synthetic_*.h5")) == files
    del cached                                       # closes its HDF5 handle (HDF5 reuses open files)
    gc.collect()
    data = files[0].read_bytes()
    files[0].write_bytes(data[:len(data) // 2])                                  # truncated
    with pytest.raises(DatasetError, match=r"cache '.*synthetic_\w+\.h5' is unreadable .*delete it"):
        SyntheticMultiView(w, mode="images", image_size=32, cache_dir=str(tmp_path))
    import h5py
    with h5py.File(files[0], "w") as f:
        f.create_dataset("images", (2, 4, 32, 32, 3), dtype="uint8")
    with pytest.raises(DatasetError, match=r"holds images \(2, 4, 32, 32, 3\), expected \(3, 4, 32, 32, 3\)"):
        SyntheticMultiView(w, mode="images", image_size=32, cache_dir=str(tmp_path))


def test_exact_noise_model_gives_exact_2d():
    ds = SyntheticMultiView(world(noise=DetectorNoise.none()))
    s = ds[3]
    assert torch.equal(s["keypoints_2d"], s["keypoints_2d_gt"])


def test_config_builds_the_splits():
    cfg = load_config(None, ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "10",
                             "DATASETS.TEST_STRIDE", "5"])
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert {s.subject for s in train.world.sequences} == {"S1", "S5", "S6", "S7", "S8"}
    assert {s.subject for s in test.world.sequences} == {"S9", "S11"}
    assert len(train) == 5 * 10 and len(test) == 2 * 2


@pytest.mark.parametrize("kw, message", [
    (dict(actions=["moonwalk"]), "unknown action(s) moonwalk"),
    (dict(rig="dome"), "unknown rig 'dome'"),
    (dict(num_cameras=9), "NUM_CAMERAS must be in 2..8"),
    (dict(subjects=[], motion_files=[]), "has no sequences"),
    (dict(motion_files=["/nonexistent/clip.bvh"]), "'/nonexistent/clip.bvh' does not exist"),
])
def test_bad_world_settings(kw, message):
    with pytest.raises(DatasetError) as err:
        world(**kw)
    assert message in str(err.value)


def test_bad_sample_settings():
    with pytest.raises(DatasetError, match="unknown mode 'video'"):
        SyntheticMultiView(world(), mode="video")
    with pytest.raises(DatasetError, match="DATASETS.VIEWS"):
        SyntheticMultiView(world(), views="some")


@pytest.mark.parametrize("clip", ["01_01", "131_01"])
def test_motion_from_a_bvh_clip(clip, shared_data):
    path = shared_data(f"cmu_mocap/{clip}.bvh")
    w = world(subjects=[], motion_files=[str(path)], frames_per_sequence=5)
    seq = w.sequences[0]
    assert seq.subject == "mocap" and seq.action == clip.replace("_", "-") and len(seq.keypoints_3d) > 50
    assert np.isfinite(seq.keypoints_2d_gt).all()
    assert seq.visibility.mean() > 0.5
    assert SyntheticMultiView(w, mode="images", image_size=32)[0]["images"].shape == (4, 3, 32, 32)


def test_augmented_crops_keep_the_epipolar_geometry_exact():
    from core.geometry.epipolar import epipolar_lines, fundamental_from_cameras, point_line_distance

    torch.manual_seed(0)
    ds = SyntheticMultiView(world(frames_per_sequence=4, noise=DetectorNoise.none()), mode="images", image_size=64,
                            augment=True, scale_factor=0.3, rotation_factor=40.0)
    s = ds[1]
    cams = s["cameras"]
    assert (cams.K[..., 0, 1].abs() > 1e-6).any()  # some crops are rotated (K has a skew term)
    # the rendered 2D are the projections by the augmented cameras and stay in the crop
    projected = cams.project(s["keypoints_3d"][0].double().expand(4, -1, -1))
    assert torch.allclose(projected.float(), s["keypoints_2d_crop"][0], atol=1e-3)
    # a 3D point's undistorted projections lie on each other's epipolar lines in every pair of views
    undistorted = cams.undistort_pixels(projected)
    for a, b in [(0, 1), (1, 2), (3, 0)]:
        lines = epipolar_lines(undistorted[a], fundamental_from_cameras(cams[a], cams[b]))
        assert point_line_distance(undistorted[b], lines).max() < 1e-6
    assert not torch.equal(s["images"], ds[1]["images"])  # a new draw each time


def test_augmentation_settings_are_checked():
    with pytest.raises(DatasetError, match="cannot be used with DATASETS.AUGMENT"):
        SyntheticMultiView(world(), mode="images", augment=True, cache_dir="/tmp/x")
    with pytest.raises(DatasetError, match="SCALE_FACTOR must be in"):
        SyntheticMultiView(world(), augment=True, scale_factor=1.5)
