import math

import pytest
import torch

from core.config import load_config
from core.registry import RegistryError
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.pipelines import LiftingPipeline, PipelineConfigError, TriangulationPipeline, build_pipeline

LIFTING = ["MODEL.PIPELINE", "lifting"]
LINEAR = [*LIFTING, "MODEL.LIFTER.NAME", "linear", "DATASETS.VIEWS", "single"]
POSE3D = ["MODEL.PIPELINE", "multiview_consistency", "MODEL.LIFTER.NAME", "pose3d", "DATASETS.VIEWS", "single"]


def batch(views="all", noise=None, n=8):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=n,
                                     noise=noise or DetectorNoise.none()))
    ds = SyntheticMultiView(world, views=views)
    return collate_samples([ds[i] for i in range(n)])


def test_triangulation_pipeline_on_exact_2d():
    model = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt"]))
    assert isinstance(model, TriangulationPipeline) and not model.trainable and model.predicts_absolute
    b = batch()
    out = model(b)
    assert out["pred_3d"].shape == (8, 17, 3)
    assert torch.allclose(out["pred_3d"], model.targets(b)["target_3d"].double(), atol=1e-2)


def test_dropped_views_give_nan_not_a_crash():
    model = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.MIN_CONFIDENCE", "0.5"]))
    b = batch()
    b["confidence_2d"][:, :, 1:, 3] = 0.0  # joint 3 seen by one view only
    out = model(b)
    assert torch.isnan(out["pred_3d"][:, 3]).all() and not out["valid_3d"][:, 3].any()
    assert torch.isfinite(out["pred_3d"][:, 4]).all()


def test_confidence_weighting_downweights_an_outlier_view():
    b = batch()
    b["keypoints_2d"][:, :, 0, 5] += 60.0     # view 0 of joint 5 is a gross outlier...
    b["confidence_2d"][:, :, 0, 5] = 0.01     # ...and the detector says so
    plain = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt"]))(b)
    weighted = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.CONFIDENCE_WEIGHTED",
                                                 "True"]))(b)
    err = lambda out: (out["pred_3d"][:, 5] - b["keypoints_3d"][:, 0, 5]).norm(dim=-1).mean()  # noqa: E731
    assert err(weighted) < 0.1 * err(plain)


def test_lifting_pipeline_standardises_and_predicts_root_relative_camera_frame():
    cfg = load_config(None, [*LINEAR, "MODEL.LIFTER.LINEAR.HIDDEN", "32"])
    model = build_pipeline(cfg)
    assert isinstance(model, LiftingPipeline) and model.trainable and not model.predicts_absolute
    b = batch(views="single", n=16)
    model.prepare([b])
    assert bool(model.statistics_fitted)
    model.eval()
    out = model(b)
    assert out["pred_3d"].shape == (16, 17, 3) and torch.equal(out["pred_3d"][:, 0], torch.zeros(16, 3))
    # target: the camera-frame pose relative to the pelvis; its bone lengths equal the world pose's
    world, target = b["keypoints_3d"][:, 0], model.targets(b)["target_3d"]
    assert torch.allclose((target[:, 2] - target[:, 1]).norm(dim=-1),
                          (world[:, 2] - world[:, 1]).norm(dim=-1), atol=1e-2)
    losses = model.losses(out, b)
    assert set(losses) == {"mse_3d"} and math.isfinite(losses["mse_3d"].item())


def test_linear_lifter_can_take_principal_components_of_its_input():
    cfg = load_config(None, [*LINEAR, "MODEL.LIFTER.LINEAR.HIDDEN", "32",
                             "MODEL.LIFTER.PCA_COMPONENTS", "6"])
    model = build_pipeline(cfg)
    assert model.lifter.input_layer[0].in_features == 6
    b = batch(views="single", n=64)
    model.prepare([b])
    basis = model.inputs.pca_basis.double()
    assert torch.allclose(basis @ basis.T, torch.eye(6, dtype=torch.float64), atol=1e-5)
    codes = model.inputs(b["keypoints_2d"].flatten(1))
    assert codes.shape == (64, 6)
    variances = codes.var(0)
    assert torch.all(variances[:-1] >= variances[1:] - 1e-4)  # largest variance first
    model.eval()
    assert model(b)["pred_3d"].shape == (64, 17, 3)
    assert "inputs.pca_basis" in model.state_dict()  # the basis travels with the checkpoint


@pytest.mark.parametrize("overrides, error, message", [
    ([*LIFTING, "MODEL.LIFTER.NAME", "lcn", "DATASETS.VIEWS", "single", "MODEL.LIFTER.PCA_COMPONENTS", "6"],
     PipelineConfigError, "MODEL.LIFTER.PCA_COMPONENTS codes a flat input vector"),
    ([*LINEAR, "MODEL.LIFTER.PCA_COMPONENTS", "40"],
     PipelineConfigError, "MODEL.LIFTER.PCA_COMPONENTS must be in 0..34"),
    (["MODEL.HEAD.NAME", "voxel"], RegistryError, "unknown head 'voxel'; registered head names: "),
    (["MODEL.HEAD.NAME", "dlt", "DATASETS.VIEWS", "single"], PipelineConfigError, "set DATASETS.VIEWS all"),
    ([*LIFTING, "MODEL.HEAD.NAME", "dlt", "MODEL.LIFTER.NAME", "linear"], PipelineConfigError, "choose one"),
    ([], PipelineConfigError, "nothing to build"),
])
def test_bad_compositions(overrides, error, message):
    with pytest.raises(error) as err:
        build_pipeline(load_config(None, overrides))
    assert message in str(err.value)


def test_pose3d_needs_multi_view_training_samples_and_tests_single_views():
    with pytest.raises(PipelineConfigError, match="DATASETS.TRAIN_VIEWS all"):
        build_pipeline(load_config(None, POSE3D))
    model = build_pipeline(load_config(None, [*POSE3D,
                                              "DATASETS.TRAIN_VIEWS", "all", "MODEL.LIFTER.POSE3D.HIDDEN", "32"]))
    model.eval()
    single = model(batch(views="single"))
    assert single["pred_3d"].shape == (8, 17, 3) and torch.equal(single["pred_3d"][:, 0], torch.zeros(8, 3))
    model.train()
    multi = batch(views="all")
    losses = model.losses(model(multi), multi)
    assert set(losses) == {"triangulation", "rigid"} and all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(PipelineConfigError, match="TRAIN_VIEWS all"):
        model.losses(single, batch(views="single"))


def test_flip_averaging_is_refused_where_it_is_not_implemented():
    with pytest.raises(PipelineConfigError, match="TEST.FLIP"):
        build_pipeline(load_config(None, [*LINEAR, "TEST.FLIP",
                                          "True"]))
    with pytest.raises(PipelineConfigError, match="TEST.FLIP"):
        build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt", "TEST.FLIP", "True"]))
