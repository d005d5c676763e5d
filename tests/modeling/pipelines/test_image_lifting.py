"""The image lifting pipeline: a ResNet trunk without the heatmap head, every view lifted, the settings it refuses,
and training steps that reduce the loss."""
import json
from pathlib import Path

import pytest
import torch

import main
from core.batch import collate_samples
from core.config import load_config
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from modeling.backbones.resnet import ResNetHeatmap
from modeling.pipelines import ImageLiftingPipeline, PipelineConfigError, build_pipeline
from tests.modeling.pipelines.training import training_losses

ROOT = Path(__file__).resolve().parents[3]
IMAGE_LIFTING = ["MODEL.PIPELINE", "image_lifting", "MODEL.BACKBONE.NAME", "resnet", "MODEL.BACKBONE.DEPTH", "18",
                 "MODEL.LIFTER.NAME", "image_canonical", "DATASETS.MODE", "images"]


@pytest.fixture(scope="module")
def batch():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=3))
    dataset = SyntheticMultiView(world, mode="images", image_size=64)
    return collate_samples([dataset[0], dataset[2]])                      # 2 frames x 4 views


def test_the_backbone_is_the_trunk_of_the_heatmap_backbone(batch):
    torch.manual_seed(0)
    model = build_pipeline(load_config(None, IMAGE_LIFTING))
    assert isinstance(model, ImageLiftingPipeline) and model.backbone.trunk_channels == 512
    heatmap = ResNetHeatmap(18)
    assert model.backbone.state_dict().keys() == {k for k in heatmap.state_dict() if k.startswith("trunk.")}
    trunk = sum(p.numel() for p in heatmap.trunk.parameters())
    assert sum(p.numel() for p in model.parameters()) == trunk + (512 * 51 + 51) + (512 * 3 + 3)
    out = model(batch, **model.truth_inputs(batch))
    assert out["pred_3d"].shape == (2, 17, 3) and out["rotation"].shape == (2, 4, 3, 3)
    assert out["canonical_3d"].shape == out["normalised_3d"].shape == (2, 4, 17, 3)


@pytest.mark.parametrize("overrides, message", [
    (["DATASETS.AUGMENT", "True"], "DATASETS.AUGMENT rotates the crops"),
    (["DATASETS.MODE", "keypoints"], "DATASETS.MODE images"),
    (["DATASETS.FRAMES", "3"], "DATASETS.FRAMES 1"),
])
def test_settings_it_cannot_lift_fail_naming_the_keys(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):
        build_pipeline(load_config(None, IMAGE_LIFTING + overrides))


def test_without_a_backbone_it_says_which_to_set():
    cfg = load_config(None, ["MODEL.PIPELINE", "image_lifting", "MODEL.LIFTER.NAME", "image_canonical",
                             "DATASETS.MODE", "images"])
    with pytest.raises(PipelineConfigError, match="set MODEL.BACKBONE.NAME resnet"):
        build_pipeline(cfg)


def test_training_steps_reduce_the_loss(batch):
    torch.manual_seed(0)
    model = build_pipeline(load_config(None, IMAGE_LIFTING))
    losses = training_losses(model, batch, steps=15, lr=1e-3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_a_short_run_trains_and_tests_without_2d(tmp_path):
    """The evaluator and the previews take a pipeline that has neither 2D input nor 2D output."""
    small = ["DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']",
             "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']", "DATASETS.SYNTHETIC.ACTIONS", "['walk']",
             "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "6", "DATASETS.TRAIN_STRIDE", "1", "DATASETS.TEST_STRIDE", "1",
             "DATASETS.VIEWS", "single", "DATASETS.NUM_WORKERS", "0", "SOLVER.MAX_EPOCHS", "1",
             "SOLVER.BATCH_SIZE", "8", "TEST.BATCH_SIZE", "8", "VIS.PREVIEW_SAMPLES", "1"]
    assert main.main(["--cfg", str(ROOT / "configs" / "lifting" / "img_lifting_rot_h36m.yaml"), "OUTPUT_DIR",
                      str(tmp_path), "DATASETS.NAME", "synthetic", "MODEL.BACKBONE.DEPTH", "18",
                      "MODEL.BACKBONE.PRETRAINED", "none", *small]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_poses"] == 4 * 6 and "jdr_percent" not in metrics
    assert list((tmp_path / "preview").glob("*.png"))
