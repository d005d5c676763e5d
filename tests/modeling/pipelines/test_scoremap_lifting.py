"""The score-map lifting pipeline: score maps of a crop around the 2D, each skeleton's frame, targets that map back to
the world pose exactly, the scale protocols, training steps and a short run of main.py."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import main
from core.batch import collate_samples
from core.config import load_config
from core.skeleton import H36M17, HAND21, MPI_INF_3DHP17, PANOPTIC19
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from modeling.pipelines import PipelineConfigError, ScoremapLiftingPipeline, build_pipeline
from modeling.pipelines.normalised_lifting import PoseFrame, pose_frame
from modeling.pipelines.scoremap_lifting import crop_scoremaps
from tests.modeling.pipelines.training import training_losses

ROOT = Path(__file__).resolve().parents[3]
SMALL_WORLD = ["DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']",
               "DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "12"]


def config(lifter="scoremap_canonical", *overrides):
    node = f"MODEL.LIFTER.{lifter.upper()}"
    return load_config(None, ["MODEL.PIPELINE", "scoremap_lifting", "MODEL.LIFTER.NAME", lifter,
                              f"{node}.SCOREMAP_SIZE", "32", f"{node}.POOL", "4", f"{node}.CHANNELS", "[8, 16]",
                              f"{node}.HIDDEN", "[64]", f"{node}.DROPOUT", "0.0", "MODEL.LIFTER.SCOREMAP_SIGMA", "1.5",
                              *overrides])


@pytest.fixture(scope="module")
def batch():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk", "turn"], frames_per_sequence=12))
    dataset = SyntheticMultiView(world, views="all")          # 4 views a sample
    return collate_samples([dataset[i] for i in range(0, 24, 3)])


def test_score_maps_cover_a_square_around_the_2d():
    keypoints = torch.tensor([[[10.0, 20.0], [30.0, 20.0], [20.0, 40.0], [500.0, 500.0]]])   # box 20 x 20 at (20, 30)
    confidence = torch.tensor([[1.0, 0.5, 0.9, 0.0]])                      # the last joint is not seen
    maps = crop_scoremaps(keypoints, confidence, size=40, sigma=1.0, crop_scale=2.0)
    assert maps.shape == (1, 4, 40, 40)
    # a crop of 40 px from (0, 10) at 1 map pixel a pixel, pixel centres at whole map coordinates
    grid = torch.arange(40.0)
    weights = maps[0, :3] / maps[0, :3].sum((-2, -1), keepdim=True)
    centres = torch.stack([(weights.sum(-2) * grid).sum(-1), (weights.sum(-1) * grid).sum(-1)], -1)
    assert torch.allclose(centres, torch.tensor([[9.5, 9.5], [29.5, 9.5], [19.5, 29.5]]), atol=1e-4)
    assert maps[0, 3].abs().sum() == 0
    # the same 2D moved and magnified gives the same maps
    assert torch.allclose(crop_scoremaps(keypoints * 3 + 7, confidence, 40, 1.0, 2.0), maps, atol=1e-5)


def test_each_skeleton_has_its_frame_by_common_names():
    assert pose_frame(HAND21) == PoseFrame(scale_from=12, scale_to=11, align=12, rotate=20)  # hand3d's 12 -> 11, 12, 20
    assert pose_frame(H36M17) == PoseFrame(scale_from=0, scale_to=8, align=8, rotate=4)      # ET's joint 0 -> 8
    for skeleton in (MPI_INF_3DHP17, PANOPTIC19):
        frame = pose_frame(skeleton)
        names = skeleton.common_names()
        assert (names[frame.scale_from], names[frame.align], names[frame.rotate]) == ("pelvis", "thorax", "l_hip")


def test_the_view_targets_map_back_to_the_world_pose(batch):
    model = build_pipeline(config())
    targets, scale = model.view_targets(batch), model.truth_inputs(batch)["scale_mm"]
    assert targets["canonical_3d"].shape == (8, 4, 17, 3) and targets["rotation"].shape == (8, 4, 3, 3)
    assert torch.allclose(targets["canonical_3d"] @ targets["rotation"], targets["normalised_3d"], atol=1e-5)
    assert torch.allclose(targets["canonical_3d"][..., 8, 1], -torch.ones(8, 4), atol=1e-5)  # thorax at -1 on y
    world = targets["normalised_3d"].double() * scale[:, None, None, None] @ batch["cameras"].R
    assert torch.allclose(world.float(), model.targets(batch)["target_3d"][:, None].expand(-1, 4, -1, -1), atol=1e-3)


class Oracle(nn.Module):
    """A lifter that outputs given normalised poses (flattened over samples and views)."""
    canonical, scoremap_size = False, 32

    def __init__(self, normalised):
        super().__init__()
        self.normalised = normalised

    def forward(self, maps):
        assert maps.shape == (len(self.normalised), 17, 32, 32)
        return {"normalised_3d": self.normalised}


@pytest.mark.parametrize("scale", ["truth", "mean"])
def test_the_prediction_is_the_views_poses_averaged_in_the_world(batch, scale):
    built = build_pipeline(config("scoremap_direct", "MODEL.LIFTER.SCALE", scale))
    model = ScoremapLiftingPipeline(Oracle(built.view_targets(batch)["normalised_3d"].flatten(0, 1)), scale=scale,
                                    sigma=1.5)
    model.prepare([batch])
    pred, target = model(batch, **model.truth_inputs(batch))["pred_3d"], model.targets(batch)["target_3d"]
    if scale == "truth":
        assert torch.allclose(pred, target, atol=1e-3)
    else:  # the mean bone length: the right shape, scaled
        lengths = built._true_scale(batch)
        assert torch.isclose(model.mean_scale_mm, lengths.mean())
        assert torch.allclose(pred * (lengths / model.mean_scale_mm)[:, None, None].float(), target, atol=1e-2)


def test_the_true_scale_is_an_input_from_the_truth(batch):
    model = build_pipeline(config())
    inputs = {key: value for key, value in batch.items() if key != "keypoints_3d"}
    with pytest.raises(ValueError, match="MODEL.LIFTER.SCALE truth takes the target pose's bone length"):
        model(inputs)
    with pytest.raises(ValueError, match="MODEL.LIFTER.SCALE truth .* no keypoints_3d"):
        model.truth_inputs(inputs)


@pytest.mark.parametrize("overrides, message", [
    (["DATASETS.FRAMES", "3"], "DATASETS.MODE keypoints and DATASETS.FRAMES 1"),
    (["MODEL.LIFTER.SCOREMAP_CROP_SCALE", "0.5"], "SCOREMAP_CROP_SCALE >= 1"),
    (["MODEL.LIFTER.SCOREMAP_CANONICAL.POOL", "64"], "MODEL.LIFTER.SCOREMAP_CANONICAL: .*pool"),
])
def test_bad_settings_fail_naming_the_keys(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):
        build_pipeline(config("scoremap_canonical", *overrides))


@pytest.mark.parametrize("lifter", ["scoremap_direct", "scoremap_canonical"])
def test_training_steps_reduce_the_loss(batch, lifter):
    torch.manual_seed(0)
    extra = ["MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_CHANNELS", "[8, 16]", "MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_HIDDEN",
             "[32]", "MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_DROPOUT", "0.0"] if lifter == "scoremap_canonical" else []
    model = build_pipeline(config(lifter, *extra))
    losses = training_losses(model, batch, steps=30, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_a_short_run_of_the_synthetic_config(tmp_path):
    out = tmp_path / "out"
    code = main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "lifting_rot.yaml"), "OUTPUT_DIR", str(out),
                      *SMALL_WORLD, "DATASETS.VAL_SUBJECTS", "[]", "SOLVER.MAX_EPOCHS", "1", "VIS.PREVIEW_SAMPLES",
                      "1"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_poses"] == 4 * 12 and 0 < metrics["mpjpe_root_relative_mm"]["frame_avg"] < 1000
