"""Target joints missing from the data (NaN 3D): left out of every lifting loss without NaN gradients, and out
of the metrics (core.missing_joints)."""
import pytest
import torch

from core.config import load_config
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from core.missing_joints import joint_errors, masked_mean
from core.skeleton import H36M17
from modeling.pipelines import RefinedPipeline, build_pipeline
from modeling.refiners.erd import ResidualDescent


def samples(views: str, frames: int, n: int = 6):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=20,
                                     noise=DetectorNoise.none()))
    ds = SyntheticMultiView(world, views=views, frames=frames, stride=3)
    return collate_samples([ds[i] for i in range(n)])


def with_missing(batch):
    """Sample 0 lacks its left wrist in every frame, sample 1 its pelvis (so it has no root-relative target)."""
    batch = dict(batch)
    batch["keypoints_3d"] = batch["keypoints_3d"].clone()
    batch["keypoints_3d"][0, :, 13] = float("nan")
    batch["keypoints_3d"][1, :, 0] = float("nan")
    return batch


def test_masked_errors_ignore_missing_joints_and_give_finite_gradients():
    pred = torch.randn(2, 17, 3, requires_grad=True)
    target = torch.randn(2, 17, 3)
    target[0, 5] = float("nan")
    errors, present = joint_errors(pred, target)
    loss = masked_mean(errors, present)
    loss.backward()
    assert present.sum() == 33 and errors[0, 5] == 0
    assert torch.isclose(loss, (pred - target).norm(dim=-1)[present].mean())
    assert torch.isfinite(pred.grad).all() and torch.equal(pred.grad[0, 5], torch.zeros(3))
    per_sample = masked_mean(errors, present, dim=1)
    assert torch.isclose(per_sample[0], errors[0, present[0]].mean())
    assert masked_mean(errors, torch.zeros_like(present)) == 0


def lifting_model(name: str):
    if name == "erd":
        base = build_pipeline(load_config(None, ["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.NAME", "linear",
                                                 "DATASETS.VIEWS", "single", "MODEL.LIFTER.LINEAR.HIDDEN", "16"]))
        return RefinedPipeline(base, ResidualDescent(H36M17, num_stages=2, hidden=16), 1), "single", 1
    overrides = {"linear": (["MODEL.PIPELINE", "lifting", "MODEL.LIFTER.LINEAR.HIDDEN", "16"], "single", 1),
                 "poseformer": (["MODEL.PIPELINE", "screen_lifting", "DATASETS.FRAMES", "9",
                                 "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "MODEL.LIFTER.POSEFORMER.DEPTH", "1"], "single", 9),
                 "esmformer": (["MODEL.PIPELINE", "multiview_lifting", "DATASETS.FRAMES", "9",
                                "MODEL.LIFTER.ESMFORMER.FEATURES", "16"], "all", 9)}[name]
    cfg = load_config(None, ["MODEL.LIFTER.NAME", name, "DATASETS.VIEWS", overrides[1], *overrides[0]])
    return build_pipeline(cfg), overrides[1], overrides[2]


class Loader(list):
    """Batches with the ``dataset`` attribute of a DataLoader (prepare logs its size)."""
    dataset = range(6)


def subset(batch, keep):
    return {k: (v[keep] if hasattr(v, "__getitem__") and not isinstance(v, dict) else v) for k, v in batch.items()}


@pytest.mark.parametrize("name", ["linear", "poseformer", "esmformer", "erd"])
def test_every_supervised_lifting_loss_leaves_missing_joints_out(name):
    torch.manual_seed(0)
    model, views, frames = lifting_model(name)
    complete = samples(views, frames)
    batch = with_missing(complete)
    predict = lambda b: model(b, **model.truth_inputs(b))  # noqa: E731  (ERD takes the true pelvis)
    model.prepare(Loader([batch]))              # the linear lifter fits its statistics on targets with gaps
    assert all(torch.isfinite(b).all() for b in model.buffers() if b.is_floating_point())
    model.train()
    model.start_epoch(0)
    loss = sum(model.losses(predict(batch), batch).values())
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        if name == "esmformer":   # per window: the other windows' losses are unchanged, the pelvis-less one is 0
            with_gaps = model._window_losses(predict(batch), batch)["mpjpe"]
            whole = model._window_losses(predict(complete), complete)["mpjpe"]
            assert with_gaps[1] == 0 and torch.allclose(with_gaps[2:], whole[2:]) and with_gaps[0] != whole[0]
            loss = model.losses(predict(batch), batch)["mpjpe"]
            assert torch.isclose(loss, with_gaps[[0, 2, 3, 4, 5]].mean())     # the empty window weighs nothing
        else:                     # a sample without a root-relative target weighs nothing in the batch's loss
            keep = torch.tensor([0, 2, 3, 4, 5])
            kept = subset(batch, keep)
            assert torch.allclose(sum(model.losses(predict(batch), batch).values()),
                                  sum(model.losses(predict(kept), kept).values()))
