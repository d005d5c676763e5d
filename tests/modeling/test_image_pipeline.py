import pytest
import torch

from core.config import load_config
from datasets.collate import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from modeling.pipeline import ImagePipeline, PipelineConfigError, build_pipeline

IMAGES = ["MODEL.BACKBONE.NAME", "resnet", "MODEL.BACKBONE.DEPTH", "18", "DATASETS.MODE", "images"]


@pytest.fixture(scope="module")
def batch():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=2))
    ds = SyntheticMultiView(world, mode="images", image_size=128)  # layer4 maps of 4x4 for the confidence head
    return collate_samples([ds[0], ds[1]])


def build(*overrides):
    torch.manual_seed(0)
    return build_pipeline(load_config(None, [*IMAGES, *overrides]))


def test_baseline_shapes_losses_and_gradients(batch):
    model = build("MODEL.HEAD.NAME", "dlt")
    assert isinstance(model, ImagePipeline) and model.trainable and model.predicts_absolute
    out = model(batch)
    assert out["heatmaps"].shape == (2, 4, 17, 32, 32)
    assert out["pred_2d"].shape == (2, 4, 17, 2) and out["pred_3d"].shape == (2, 17, 3)
    assert ((out["confidence_2d"] >= 0) & (out["confidence_2d"] <= 1)).all()
    losses = model.losses(out, batch)
    assert set(losses) == {"heatmap"} and torch.isfinite(losses["heatmap"])
    losses["heatmap"].backward()
    assert model.backbone.trunk.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("merge", ["early", "late"])
def test_epipolar_fusion_starts_as_the_identity(batch, merge):
    fused = build("MODEL.HEAD.NAME", "dlt", "MODEL.FUSION.NAME", "epipolar", "MODEL.FUSION.MERGE", merge,
                  "MODEL.FUSION.SAMPLES", "8").eval()
    plain = build("MODEL.HEAD.NAME", "dlt").eval()
    plain.backbone.load_state_dict(fused.backbone.state_dict())
    with torch.no_grad():
        assert torch.equal(fused(batch)["heatmaps"], plain(batch)["heatmaps"])
    fused.train()
    out = fused(batch)
    fused.losses(out, batch)["heatmap"].backward()
    assert fused.fusion.bn.weight.grad.abs().sum() > 0  # the fusion learns


def test_algebraic_head_trains_end_to_end_through_the_3d_loss(batch):
    model = build("MODEL.HEAD.NAME", "algebraic", "MODEL.HEAD.LOSS_3D_WEIGHT", "1.0", "MODEL.BACKBONE.DECODE",
                  "soft_argmax")
    out = model(batch)
    losses = model.losses(out, batch)
    assert set(losses) == {"heatmap", "joint_error_3d"}
    losses["joint_error_3d"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.confidence_head.parameters())


def test_ransac_head_builds_with_its_threshold():
    model = build("MODEL.HEAD.NAME", "ransac", "MODEL.HEAD.INLIER_THRESHOLD_PX", "4.0")
    assert model.head.inlier_threshold_px == 4.0


@pytest.mark.parametrize("overrides, message", [
    (["DATASETS.MODE", "keypoints", "MODEL.HEAD.NAME", "dlt"], "set DATASETS.MODE images"),
    (["MODEL.HEAD.NAME", "none"], "an image pipeline needs MODEL.HEAD.NAME"),
    (["MODEL.HEAD.NAME", "dlt", "MODEL.FUSION.MERGE", "middle"], "MODEL.FUSION.MERGE must be early or late"),
])
def test_bad_image_compositions(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):
        build(*overrides)
