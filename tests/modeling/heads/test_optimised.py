"""The optimised head (modeling/heads/optimised.py) and how the triangulation pipeline hands it the sequences."""
import pytest
import torch

from core.batch import collate_samples
from core.config import load_config
from core.registry import HEADS
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.heads.optimised import OptimisedHead
from modeling.heads.ransac import RansacHead
from modeling.pipelines import build_pipeline
from modeling.pipelines.triangulation import sequence_inputs

FRAMES = 30


@pytest.fixture(scope="module")
def two_sequences():
    """60 samples: two 30-frame sequences (walk, squat) of noisy 2D with outliers, in the dataset's order."""
    noise = DetectorNoise(jitter_std_px=3.0, outlier_prob=0.05, outlier_std_px=60.0)
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk", "squat"], frames_per_sequence=FRAMES,
                                     noise=noise))
    ds = SyntheticMultiView(world, views="all")
    return collate_samples([ds[i] for i in range(len(ds))])


def centre(batch, key):
    return batch[key][:, batch[key].shape[1] // 2]


def error(points, batch):
    return (points - centre(batch, "keypoints_3d").double()).norm(dim=-1).mean().item()


def test_the_pipeline_optimises_each_sequence_whatever_the_batch_order(two_sequences):
    b = two_sequences
    model = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "optimised", "MODEL.HEAD.CONFIDENCE_WEIGHTED",
                                              "True"]))
    assert isinstance(model.head, OptimisedHead) and isinstance(HEADS.get("optimised")(), OptimisedHead)
    inputs = sequence_inputs(model.head, b)
    assert inputs["sequence"].tolist() == [0] * FRAMES + [1] * FRAMES or \
        inputs["sequence"].tolist() == [1] * FRAMES + [0] * FRAMES
    assert inputs["frames"].tolist() == list(range(FRAMES)) * 2
    out = model(b)
    ransac = RansacHead(15.0, confidence_weighted=True)(centre(b, "keypoints_2d"), centre(b, "confidence_2d"),
                                                        b["cameras"])
    assert out["valid_3d"].all() and error(out["pred_3d"], b) < 0.8 * error(ransac.points_3d, b)

    order = torch.randperm(2 * FRAMES, generator=torch.Generator().manual_seed(0))
    shuffled = {k: (v[order] if isinstance(v, torch.Tensor) or k == "cameras" else v) for k, v in b.items()}
    shuffled["meta"] = {k: [v[i] for i in order.tolist()] for k, v in b["meta"].items()}
    assert torch.allclose(model(shuffled)["pred_3d"], out["pred_3d"][order], atol=1e-6)
    assert sequence_inputs(RansacHead(), b) == {} and sequence_inputs(model.head, {"keypoints_2d": None}) == {}


def test_without_sequences_each_sample_is_refined_alone(two_sequences):
    b = two_sequences
    args = centre(b, "keypoints_2d"), centre(b, "confidence_2d"), b["cameras"]
    head = OptimisedHead(confidence_weighted=True, views="inliers")
    alone = head(*args)
    sequence, frames = torch.tensor([0] * FRAMES + [1] * FRAMES), torch.arange(2 * FRAMES) % FRAMES
    per_frame = OptimisedHead(confidence_weighted=True, views="inliers", over_time=False)(*args, sequence=sequence, frames=frames)
    assert torch.allclose(alone.points_3d, per_frame.points_3d)
    over_time = head(*args, sequence=sequence, frames=frames)
    assert error(over_time.points_3d, b) < error(alone.points_3d, b)
    assert alone.weights.shape == args[1].shape and (alone.num_views == (alone.weights > 0).sum(1)).all()


def test_bad_arguments_are_named(two_sequences):
    for kwargs, message in ((dict(loss="l1"), "loss must be one of"), (dict(views="best"), "views must be one of"),
                            (dict(iterations=0), "iterations must be"), (dict(bone_weight=-1.0), "bone_weight must"),
                            (dict(inlier_threshold_px=0.0), "inlier_threshold_px must")):
        with pytest.raises(ValueError, match=message):
            OptimisedHead(**kwargs)
    b = two_sequences
    args = centre(b, "keypoints_2d"), centre(b, "confidence_2d"), b["cameras"]
    with pytest.raises(ValueError, match=r"sequence must be a tensor of shape \(B,\) = \(60,\)"):
        OptimisedHead()(*args, sequence=torch.zeros(3), frames=torch.zeros(3))
    with pytest.raises(ValueError, match="sequence and frames must be given together"):
        OptimisedHead()(*args, sequence=torch.zeros(60))
