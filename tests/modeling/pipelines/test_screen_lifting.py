import pytest
import torch

from core.config import load_config
from core.geometry.cameras import Cameras
from core.geometry.mirror import mirror_joints_3d
from core.batch import collate_samples
from core.skeleton import H36M17
from datasets.sequences import mirror_sample
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from modeling.lifters.poseformer import PoseFormer
from modeling.pipelines import PipelineConfigError, ScreenLiftingPipeline, build_pipeline
from modeling.pipelines.targets import normalised_screen_coordinates
from tests.modeling.pipelines.training import training_losses

POSEFORMER = ["MODEL.PIPELINE", "screen_lifting", "MODEL.LIFTER.NAME", "poseformer"]
TINY = [*POSEFORMER, "DATASETS.VIEWS", "single", "DATASETS.FRAMES", "9",
        "MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO", "8", "MODEL.LIFTER.POSEFORMER.DEPTH", "1", "MODEL.LIFTER.POSEFORMER.NUM_HEADS", "2"]


def single_view_batch(n=12, frames=9):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=40))
    ds = SyntheticMultiView(world, views="single", frames=frames, stride=3)
    return collate_samples([ds[i] for i in range(n)])


def test_screen_coordinates_span_the_width_and_keep_the_aspect_ratio():
    cams = Cameras.create(torch.eye(3).expand(2, 1, 3, 3), torch.eye(3).expand(2, 1, 3, 3), torch.zeros(2, 1, 3),
                          image_size=torch.tensor([1000.0, 1002.0]))
    pixels = torch.tensor([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]]).expand(2, 5, 1, 3, 2)   # B, T, V, J, 2
    out = normalised_screen_coordinates(pixels, cams)
    assert out.shape == (2, 5, 1, 3, 2)
    assert torch.allclose(out[1, 4, 0], torch.tensor([[-1.0, -1.002], [1.0, 1.002], [0.0, 0.0]]))


def test_poseformer_is_built_from_the_config_with_the_reference_sizes():
    model = build_pipeline(load_config(None, [*POSEFORMER, "DATASETS.VIEWS", "single", "DATASETS.FRAMES", "81"]))
    assert isinstance(model, ScreenLiftingPipeline) and isinstance(model.lifter, PoseFormer)
    assert sum(p.numel() for p in model.parameters()) == 9_602_885
    with pytest.raises(PipelineConfigError, match="DATASETS.VIEWS single"):
        build_pipeline(load_config(None, POSEFORMER))


def test_flip_averaging_is_mirror_symmetric_and_targets_mirror_with_the_input():
    torch.manual_seed(0)
    model = build_pipeline(load_config(None, TINY + ["TEST.FLIP", "True"])).eval()
    batch = single_view_batch()
    mirrored = mirror_sample(batch, H36M17)
    with torch.no_grad():
        out, out_mirrored = model(batch), model(mirrored)
    target, target_mirrored = model.targets(batch)["target_3d"], model.targets(mirrored)["target_3d"]
    assert torch.allclose(target_mirrored, mirror_joints_3d(target, H36M17), atol=1e-3)
    assert torch.allclose(out_mirrored["pred_3d"], mirror_joints_3d(out["pred_3d"], H36M17), atol=0.05)  # float32 2D
    plain = build_pipeline(load_config(None, TINY)).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(plain(mirrored)["pred_3d"], mirror_joints_3d(plain(batch)["pred_3d"], H36M17), atol=1.0)


def test_training_steps_reduce_the_mpjpe_loss():
    torch.manual_seed(0)
    model = build_pipeline(load_config(None, TINY + ["MODEL.LIFTER.POSEFORMER.DROP_PATH_RATE", "0.0"]))
    batch = single_view_batch()
    losses = training_losses(model, batch, steps=30, lr=1e-3, optimiser=torch.optim.AdamW, loss="mpjpe")
    assert losses[-1] < 0.5 * losses[0]
