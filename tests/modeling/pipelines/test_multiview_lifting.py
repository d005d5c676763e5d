import pytest
import torch

from core.config import load_config
from core.geometry.mirror import mirror_joints_3d
from core.batch import collate_samples
from core.skeleton import H36M17
from datasets.sequences import mirror_sample
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.pipelines import MultiViewLiftingPipeline, PipelineConfigError, build_pipeline

ESM = ["MODEL.PIPELINE", "multiview_lifting", "MODEL.LIFTER.NAME", "esmformer", "DATASETS.FRAMES", "9"]


def window_batch(n=6, noise=None):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=30,
                                     noise=noise or DetectorNoise.none()))
    ds = SyntheticMultiView(world, views="all", frames=9, stride=4)
    return ds, collate_samples([ds[i] for i in range(n)])


def truth_outputs(batch, centre_only=True):
    world = batch["keypoints_3d"].float()
    relative = world - world[..., :1, :]
    window = relative[:, 4:5] if centre_only else relative
    return {"pred_window": window.clone().requires_grad_(True), "target_window": relative}


@pytest.mark.parametrize("loss_w", [0.8, 0.0, 1.0])
def test_self_supervised_losses_vanish_on_consistent_input(loss_w):
    model = build_pipeline(load_config(None, ESM + ["MODEL.LIFTER.SELF_SUPERVISED", "True", "MODEL.LIFTER.LOSS_W",
                                                    str(loss_w)]))
    _, batch = window_batch()
    outputs = truth_outputs(batch)
    losses = model.losses(outputs, batch)
    assert set(losses) == {"triangulation", "reprojection"} - ({"triangulation"} if loss_w == 0 else set()) \
        - ({"reprojection"} if loss_w == 1 else set())
    assert all(v.item() < 1e-6 for v in losses.values()), losses      # metres / normalised screen units
    with torch.no_grad():
        outputs["pred_window"][:, :, 13, 0] += 50.0                     # the left wrist 5 cm off
    wrong = model.losses(outputs, batch)
    assert all(v.item() > 1e-4 for v in wrong.values())                # 50 mm / 17 joints; ~11 px / 17 joints
    sum(wrong.values()).backward()
    assert outputs["pred_window"].grad[:, :, 13].abs().sum() > 0


def test_supervised_loss_is_the_window_mpjpe_and_error_aware_weights_apply():
    model = build_pipeline(load_config(None, ESM + ["MODEL.LIFTER.ERROR_AWARE", "True"]))
    ds, batch = window_batch()
    model.prepare(type("Loader", (), {"dataset": ds})())
    outputs = truth_outputs(batch, centre_only=False)
    offsets = torch.tensor([0.0, 10.0, 20.0, 30.0, 40.0, 200.0])         # window i: every joint this far off on x
    with torch.no_grad():
        outputs["pred_window"][..., 0] += offsets[:, None, None]
    losses = model.losses(outputs, batch)
    assert set(losses) == {"mpjpe"}
    # the worst window loses weight, so the weighted MPJPE is below the plain mean (the reference's weak update:
    # the trimmed standard deviation of losses in metres is small)
    assert 0 < losses["mpjpe"].item() < offsets.mean().item() / 1000
    frames = batch["frame_ids"]
    assert (model.error_weights.frame_weights[frames[5]] < 1).all() and (model.error_weights.frame_weights[frames[0]] > 1).all()


def test_flip_averaging_is_mirror_symmetric():
    torch.manual_seed(0)
    cfg = load_config(None, ESM + ["TEST.FLIP", "True", "DATASETS.FLIP", "True"])
    model = build_pipeline(cfg).eval()
    assert isinstance(model, MultiViewLiftingPipeline)
    for module in (model.lifter.views, model.lifter.temporal):            # keep it fast: shallow stacks
        for stack in module:
            for sub in stack.modules():
                if hasattr(sub, "blocks"):
                    sub.blocks = sub.blocks[:1]
    _, batch = window_batch(n=2, noise=DetectorNoise())
    with torch.no_grad():
        out, out_mirrored = model(batch), model(mirror_sample(batch, H36M17))
    target, target_mirrored = model.targets(batch)["target_3d"], model.targets(mirror_sample(batch, H36M17))["target_3d"]
    assert torch.allclose(target_mirrored, mirror_joints_3d(target, H36M17), atol=1e-3)
    assert torch.allclose(out_mirrored["pred_3d"], mirror_joints_3d(out["pred_3d"], H36M17), atol=0.05)


def test_configuration_errors_name_the_keys():
    with pytest.raises(PipelineConfigError, match="DATASETS.VIEWS all"):
        build_pipeline(load_config(None, ESM + ["DATASETS.VIEWS", "single"]))
    with pytest.raises(PipelineConfigError, match="LOSS_W must be in"):
        build_pipeline(load_config(None, ESM + ["MODEL.LIFTER.LOSS_W", "1.5"]))
    with pytest.raises(PipelineConfigError, match="DATASETS.FLIP True"):
        build_pipeline(load_config(None, ESM + ["TEST.FLIP", "True"]))
    with pytest.raises(PipelineConfigError, match="RIG h36m_ring"):
        build_pipeline(load_config(None, ESM + ["DATASETS.SYNTHETIC.RIG", "random"]))
    with pytest.raises(PipelineConfigError, match="multiple of 9"):
        build_pipeline(load_config(None, ESM + ["DATASETS.FRAMES", "5"]))
    with pytest.raises(PipelineConfigError,
                       match=r"MODEL.LIFTER.ESMFORMER: projection_dropout must be a dropout probability in \[0, 1\)"):
        build_pipeline(load_config(None, ESM + ["MODEL.LIFTER.ESMFORMER.PROJECTION_DROPOUT", "1.0"]))


def dropout_rates(model):
    return sorted({m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)})


def test_dropout_rates_come_from_the_config():
    assert dropout_rates(build_pipeline(load_config(None, ESM))) == [0.1, 0.25]     # the reference's
    model = build_pipeline(load_config(None, ESM + ["MODEL.LIFTER.ESMFORMER.DROPOUT", "0.0",
                                                    "MODEL.LIFTER.ESMFORMER.PROJECTION_DROPOUT", "0.3"]))
    assert dropout_rates(model) == [0.0, 0.3]
    projections = [m for name, m in model.named_modules() if ".projections." in name and isinstance(m, torch.nn.Dropout)]
    assert projections and all(m.p == 0.3 for m in projections)
