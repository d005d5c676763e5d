import pytest
import torch

from core.config import load_config
from core.engine.trained_run import load_pretrained_parts
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from modeling.pipelines import ImagePipeline, PipelineConfigError, build_pipeline

IMAGES = ["MODEL.PIPELINE", "image", "MODEL.BACKBONE.NAME", "resnet", "MODEL.BACKBONE.DEPTH", "18", "DATASETS.MODE",
          "images"]


@pytest.fixture(scope="module")
def batch():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=2))
    ds = SyntheticMultiView(world, mode="images", image_size=128)  # layer4 maps of 4x4 for the confidence head
    return collate_samples([ds[0], ds[1]])
LIFTED = ["MODEL.PIPELINE", "detect_and_lift"]  # an image pipeline's 2D lifted by MODEL.LIFTER


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


def test_joints_without_truth_have_no_heatmap_target(batch):
    """A joint that the data lacks (NaN 3D, so NaN crop 2D) weighs 0 in the heatmap loss: the loss is the one of
    weight 0 at that joint, and the gradients stay finite."""
    model = build("MODEL.HEAD.NAME", "dlt")
    gaps = {**batch, **{key: batch[key].clone() for key in ("keypoints_3d", "keypoints_2d_crop")}}
    gaps["keypoints_3d"][0, :, 13] = float("nan")
    gaps["keypoints_2d_crop"][0, :, :, 13] = float("nan")
    out = model(gaps)
    loss = model.losses(out, gaps)["heatmap"]
    weights = torch.ones(2, 4, 17)
    weights[0, :, 13] = 0
    expected = model.heatmap_loss(out["heatmaps"], batch["keypoints_2d_crop"][:, 0], weights)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_deconvolution_width_sets_the_late_features(batch):
    model = build("MODEL.HEAD.NAME", "dlt", "MODEL.BACKBONE.DECONV_CHANNELS", "64", "MODEL.FUSION.NAME", "epipolar",
                  "MODEL.FUSION.SAMPLES", "8")
    assert model.backbone.late_channels == 64 and model.fusion.bn.num_features == 64
    assert model(batch)["heatmaps"].shape == (2, 4, 17, 32, 32)
    with pytest.raises(PipelineConfigError, match="MODEL.BACKBONE: .*deconv_channels"):
        build("MODEL.HEAD.NAME", "dlt", "MODEL.BACKBONE.DECONV_CHANNELS", "0")


@pytest.mark.parametrize("merge", ["early", "late"])
@pytest.mark.parametrize("residual", ["reference", "gated"])
def test_epipolar_fusion_at_initialisation(batch, merge, residual):
    """The gated residual starts as the identity; the reference's adds the attended features from the start."""
    fused = build("MODEL.HEAD.NAME", "dlt", "MODEL.FUSION.NAME", "epipolar", "MODEL.FUSION.MERGE", merge,
                  "MODEL.FUSION.SAMPLES", "8", "MODEL.FUSION.RESIDUAL", residual).eval()
    plain = build("MODEL.HEAD.NAME", "dlt").eval()
    plain.backbone.load_state_dict(fused.backbone.state_dict())
    with torch.no_grad():
        assert torch.equal(fused(batch)["heatmaps"], plain(batch)["heatmaps"]) == (residual == "gated")
    fused.train()
    out = fused(batch)
    fused.losses(out, batch)["heatmap"].backward()
    assert fused.fusion.bn.weight.grad.abs().sum() > 0  # the fusion learns


ALGEBRAIC = ["MODEL.HEAD.NAME", "algebraic", "MODEL.HEAD.LOSS_3D_WEIGHT", "1.0", "MODEL.BACKBONE.DECODE", "soft_argmax"]


def test_algebraic_head_trains_end_to_end_through_the_3d_loss(batch):
    model = build(*ALGEBRAIC)
    out = model(batch)
    losses = model.losses(out, batch)
    assert set(losses) == {"heatmap", "joint_error_3d"}
    losses["joint_error_3d"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.confidence_head.parameters())


def test_algebraic_head_as_learnable_triangulation_trains_every_confidence_parameter(batch):
    """The reference's setting: the smooth MSE of the 3D alone, soft-argmax x 100."""
    model = build(*ALGEBRAIC, "MODEL.HEAD.LOSS_3D", "smooth_mse", "MODEL.HEAD.HEATMAP_LOSS_WEIGHT", "0",
                  "MODEL.BACKBONE.SOFT_ARGMAX_BETA", "100.0")
    assert model.beta == 100.0  # the decoding the head triangulates
    out = model(batch)
    losses = model.losses(out, batch)
    assert set(losses) == {"smooth_mse_3d"} and losses["smooth_mse_3d"] > 0
    losses["smooth_mse_3d"].backward()
    parameters = dict(model.head.confidence_head.named_parameters())
    assert len(parameters) == 14
    for name, parameter in parameters.items():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert model.backbone.trunk.conv1.weight.grad.abs().sum() > 0


def test_ransac_head_builds_with_its_threshold():
    model = build("MODEL.HEAD.NAME", "ransac", "MODEL.HEAD.INLIER_THRESHOLD_PX", "4.0")
    assert model.head.inlier_threshold_px == 4.0


@pytest.mark.parametrize("overrides, message", [
    (["DATASETS.MODE", "keypoints", "MODEL.HEAD.NAME", "dlt"], "set DATASETS.MODE images"),
    (["MODEL.HEAD.NAME", "none"], "an image pipeline ends in MODEL.HEAD.NAME .* or in MODEL.LIFTER.NAME"),
    ([*LIFTED, "MODEL.HEAD.NAME", "dlt", "MODEL.LIFTER.NAME", "linear"], "are both set; choose one"),
    ([*LIFTED, "MODEL.HEAD.NAME", "none", "MODEL.LIFTER.NAME", "linear"], "MODEL.LIFTER.WEIGHTS is empty"),
    ([*LIFTED, "MODEL.HEAD.NAME", "none", "MODEL.LIFTER.NAME", "esmformer"], "must be a single-view lifter"),
    (["MODEL.HEAD.NAME", "algebraic", "MODEL.BACKBONE.DECODE", "soft_argmax"], "set MODEL.HEAD.LOSS_3D_WEIGHT > 0"),
    ([*ALGEBRAIC, "MODEL.HEAD.CONFIDENCE_FALLBACK", "0.05"], "are options of the dlt and ransac heads"),
    ([*ALGEBRAIC, "MODEL.HEAD.UNDISTORT", "False"], "are options of the dlt and ransac heads"),
    (["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.CONFIDENCE_FALLBACK", "-0.05"], "CONFIDENCE_FALLBACK must be >= 0"),
    (["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.LOSS_3D_WEIGHT", "-1.0"], "must be >= 0 and not both 0"),
    (["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.HEATMAP_LOSS_WEIGHT", "0"], "must be >= 0 and not both 0"),
    (["MODEL.HEAD.NAME", "dlt", "MODEL.BACKBONE.DECODE", "centre_of_mass", "MODEL.BACKBONE.DECODE_RADIUS", "0"],
     "DECODE_RADIUS must be a positive whole number"),
])
def test_bad_image_compositions(overrides, message):
    with pytest.raises(PipelineConfigError, match=message):  # the weights of composed parts: loaded by the engine
        load_pretrained_parts(load_config(None, [*IMAGES, *overrides]), build(*overrides))


@pytest.mark.parametrize("head, decode, mean_mm", [
    ("dlt", "argmax_taylor", 0.5),   # the Taylor step recovers the exact sub-pixel peak
    ("ransac", "argmax", 25.0),      # SimpleBaseline's quarter-pixel steps on 32 x 32 heatmaps of 128 px crops
    ("dlt", "centre_of_mass", 3.0),  # radius 8: the map border cuts the Gaussians of joints near the crop edge
    ("algebraic", "soft_argmax", 5.0),
])
def test_perfect_heatmaps_give_the_true_3d(batch, head, decode, mean_mm):
    """The pixel conventions of targets, decoding, feature cameras and heads agree end to end."""
    model = build("MODEL.HEAD.NAME", head, "MODEL.BACKBONE.DECODE", decode, "MODEL.HEAD.LOSS_3D_WEIGHT",
                  "1.0" if head == "algebraic" else "0.0").eval()
    exact = batch["keypoints_2d_crop"][:, 0]
    targets, _ = model.heatmap_loss.targets(exact, torch.ones_like(exact[..., 0]), (32, 32))
    model.backbone.forward_final = lambda features: targets
    with torch.no_grad():
        out = model(batch)
    error = (out["pred_3d"] - model.targets(batch)["target_3d"].double()).norm(dim=-1)
    assert out["valid_3d"].all() and error.mean() < mean_mm


def test_differentiable_2d_is_required_by_a_3d_loss():
    with pytest.raises(PipelineConfigError, match="needs a differentiable 2D"):
        build("MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.LOSS_3D_WEIGHT", "1.0")
    with pytest.raises(PipelineConfigError, match="decodes by soft-argmax"):
        build("MODEL.HEAD.NAME", "algebraic", "MODEL.HEAD.LOSS_3D_WEIGHT", "1.0")


def test_crop_pixels_map_back_to_the_full_image_exactly():
    from core.geometry.cameras import Cameras
    from datasets.crops import square_crop_affines
    from core.geometry.projection import crop_to_image_pixels
    torch.manual_seed(0)
    K = torch.tensor([[1145.0, 0.0, 512.0], [0.0, 1144.0, 515.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    full = Cameras.create(K.expand(2, 3, 3), torch.eye(3, dtype=torch.float64).expand(2, 3, 3),
                          torch.tensor([[0.0, 0.0, 5000.0], [100.0, 0.0, 4500.0]], dtype=torch.float64),
                          torch.tensor([-0.2, 0.24, -0.001, 0.001, -0.003], dtype=torch.float64).expand(2, 5))
    points = torch.randn(2, 17, 3, dtype=torch.float64) * 400
    affines = square_crop_affines(torch.tensor([[500.0, 480.0], [530.0, 520.0]], dtype=torch.float64),
                                  torch.tensor([600.0, 700.0], dtype=torch.float64), 256,
                                  torch.tensor([1.1, 0.9], dtype=torch.float64), torch.tensor([20.0, -35.0],
                                                                                              dtype=torch.float64))
    crops = full.with_affine(affines, (256, 256))
    mapped = crop_to_image_pixels(crops.project(points), crops, full)
    assert torch.allclose(mapped, full.project(points), atol=1e-8)
