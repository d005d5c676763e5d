"""Every registered dataset yields the one sample form of ``core.sample_schema``, alone and batched."""
import pytest
import torch

from core.batch import collate_samples
from core.config import load_config
from core.sample_schema import TRUTH_KEYS, check_sample, exact_2d
from datasets import build_dataset, registered_datasets

SMALL_WORLD = ["DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']",
               "DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "12",
               "DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.SYNTHETIC.OCCLUDERS", "1"]
PANOPTIC_SPLIT = ["DATASETS.PANOPTIC.TRAIN_SEQUENCES", "['171204_pose1']"]


def _config(case, tmp_path, fixture):
    """The config of ``case``; ``fixture(name)`` gives the data fixture ``name`` (written when first asked for)."""
    if case == "mpi_inf_3dhp":
        return load_config(None, ["DATASETS.NAME", "mpi_inf_3dhp", "DATASETS.SKELETON", "mpi_inf_3dhp17",
                                  "DATASETS.MPI_INF_3DHP.ROOT", str(fixture("mpi_inf_3dhp_root")), "DATASETS.FRAMES",
                                  "3", "DATASETS.MPI_INF_3DHP.TRAIN_SUBJECTS", "['S1']"])
    if case.startswith("rhd"):
        return load_config(None, ["DATASETS.NAME", "rhd", "DATASETS.SKELETON", "hand21", "DATASETS.RHD.ROOT",
                                  str(fixture("rhd_root")), "DATASETS.MODE", case.split("-")[1],
                                  "DATASETS.RHD.IMAGE_SIZE", "64"])
    if case == "ski":
        return load_config(None, ["DATASETS.NAME", "ski", "DATASETS.SKI.ROOT", str(fixture("ski_root")),
                                  "DATASETS.FRAMES", "3"])
    if case.startswith("panoptic"):
        mode = ["DATASETS.MODE", "images", "DATASETS.PANOPTIC.IMAGE_SIZE", "64"] if case == "panoptic-images" else []
        return load_config(None, ["DATASETS.NAME", "panoptic", "DATASETS.SKELETON", "panoptic19",
                                  "DATASETS.PANOPTIC.ROOT", str(fixture("panoptic_root")), "DATASETS.FRAMES", "3",
                                  *PANOPTIC_SPLIT, *mode])
    if case.startswith("synthetic"):
        mode, views = case.split("-")[1:]
        return load_config(None, SMALL_WORLD + ["DATASETS.MODE", mode, "DATASETS.VIEWS", views, "DATASETS.FRAMES",
                                                "3" if mode == "keypoints" else "1"])
    if case == "h36m":
        return load_config(None, ["DATASETS.NAME", "h36m", "DATASETS.H36M.ROOT", str(fixture("h36m_root")),
                                  "DATASETS.H36M.KEYPOINTS", "gt", "DATASETS.H36M.TRAIN_SUBJECTS", "['S1']",
                                  "DATASETS.H36M.TEST_SUBJECTS", "['S9']", "DATASETS.FRAMES", "3"])
    toolbox = fixture("toolbox") if case == "h36m_toolbox" else None
    root, file = (toolbox[0] / "images", toolbox[1]) if toolbox else fixture("learnable")
    yaml = tmp_path / "images.yaml"
    yaml.write_text(f"DATASETS:\n  NAME: {case}\n  MODE: images\n  H36M_IMAGES:\n    ROOT: {root}\n"
                    f"    TRAIN_FILE: {file}\n    TEST_FILE: {file}\n    IMAGE_SIZE: 64\n"
                    "    TRAIN_SUBJECTS: [S1]\n    TEST_SUBJECTS: [S9]\n")
    return load_config(str(yaml))


CASES = ("synthetic-keypoints-all", "synthetic-keypoints-single", "synthetic-images-all", "h36m", "h36m_toolbox",
         "h36m_learnable_triangulation", "rhd-keypoints", "rhd-images", "ski", "panoptic", "panoptic-images",
         "mpi_inf_3dhp")


def test_every_registered_dataset_is_checked():
    assert sorted({case.split("-")[0] for case in CASES}) == registered_datasets()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_samples_and_batches_have_the_declared_form(case, split, tmp_path, request):
    cfg = _config(case, tmp_path, request.getfixturevalue)
    dataset = build_dataset(cfg, split)
    samples = [dataset[0], dataset[len(dataset) - 1]]
    for sample in samples:
        check_sample(sample, f"{case} {split}")
    batch = collate_samples(samples)
    check_sample(batch, f"{case} {split} batch", batched=True)
    # the exact 2D is the projection of the 3D through the sample's cameras, whatever the mode
    frame = batch["keypoints_3d"].shape[1] // 2
    world = batch["keypoints_3d"][:, frame].to(batch["cameras"].dtype)
    projected = batch["cameras"].project(world.unsqueeze(1).expand(-1, batch["cameras"].batch_shape[1], -1, -1))
    torch.testing.assert_close(exact_2d(batch)[:, frame], projected.float(), atol=1e-2, rtol=0)
    assert set(TRUTH_KEYS) & set(batch) == {"keypoints_3d", "visibility", "keypoints_2d_crop" if "images" in batch
                                            else "keypoints_2d_gt"}


def test_a_wrong_sample_is_named_with_its_key():
    cfg = load_config(None, SMALL_WORLD)
    sample = build_dataset(cfg, "test")[0]
    with pytest.raises(ValueError, match=r"here: a keypoints sample must have the keys .* missing \['visibility'\]"):
        check_sample({k: v for k, v in sample.items() if k != "visibility"}, "here")
    with pytest.raises(ValueError, match=r"'confidence_2d' has J = 16 where the other keys have 17"):
        check_sample({**sample, "confidence_2d": sample["confidence_2d"][..., :16]}, "here")
    with pytest.raises(ValueError, match=r"'keypoints_2d' must be a torch.float32 tensor, got torch.float64"):
        check_sample({**sample, "keypoints_2d": sample["keypoints_2d"].double()}, "here")
    with pytest.raises(ValueError, match=r"'cameras' must be Cameras"):
        check_sample({**sample, "cameras": None}, "here")
