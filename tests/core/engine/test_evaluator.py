import pytest
import torch

from core.config import load_config
from core.engine.evaluator import evaluate, triangulated_truth
from core.geometry.cameras import Cameras
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.pipelines import build_pipeline


def _loader(noise=DetectorNoise()):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=6, noise=noise))
    return torch.utils.data.DataLoader(SyntheticMultiView(world), batch_size=4, collate_fn=collate_samples)


def test_triangulated_truth_is_the_pinhole_dlt_of_the_true_2d():
    batch = next(iter(_loader()))
    cameras = batch["cameras"]
    truth = triangulated_truth(batch)
    mocap = batch["keypoints_3d"][:, 0].to(truth.dtype)
    error = (truth - mocap).norm(dim=-1)
    # the rig's lenses distort: ignoring that (as the reference's pymvg cameras) moves the truth by millimetres
    assert 0.01 < error.mean() < 20.0
    pinhole = Cameras.create(cameras.K, cameras.R, cameras.t, image_size=cameras.image_size)
    exact = dict(batch, cameras=pinhole, keypoints_2d_gt=pinhole.project(mocap.unsqueeze(1)).unsqueeze(1))
    torch.testing.assert_close(triangulated_truth(exact), mocap, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ground_truth", ["mocap", "triangulated"])
@pytest.mark.parametrize("undistort", [True, False])
def test_metrics_name_their_ground_truth(ground_truth, undistort):
    model = build_pipeline(load_config(None, ["MODEL.HEAD.NAME", "dlt", "MODEL.HEAD.UNDISTORT", str(undistort)]))
    exact = DetectorNoise(jitter_std_px=0.0, outlier_prob=0.0, swap_prob=0.0)
    summary, predictions = evaluate(model, _loader(exact), torch.device("cpu"), ground_truth=ground_truth)
    assert summary["ground_truth_3d"].startswith(ground_truth)
    # the DLT of the exact 2D recovers the mocap 3D when it undistorts, the reference's REAL3D when it does not
    assert (summary["mpjpe_mm"]["frame_avg"] < 1e-3) == (undistort == (ground_truth == "mocap"))
    with pytest.raises(ValueError, match="ground_truth must be one of mocap, triangulated"):
        evaluate(model, _loader(exact), torch.device("cpu"), ground_truth="real3d")
