import pytest
import torch

from core.geometry.cameras import Cameras
from core.skeleton import H36M17
from modeling.refiners.erd import ResidualDescent, least_squares_root


def cameras(n=4, distorted=True):
    angle = torch.linspace(0, 1, n, dtype=torch.float64)
    c, s = torch.cos(angle), torch.sin(angle)
    R = torch.zeros(n, 3, 3, dtype=torch.float64)
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s, 1.0, -s, c
    K = torch.tensor([[1145.0, 0.0, 512.0], [0.0, 1144.0, 515.0], [0.0, 0.0, 1.0]], dtype=torch.float64).expand(n, 3, 3)
    dist = torch.tensor([-0.2, 0.24, -0.001, 0.001, -0.003], dtype=torch.float64) * (1.0 if distorted else 0.0)
    return Cameras.create(K, R, torch.randn(n, 3, dtype=torch.float64) * 100, dist.expand(n, 5),
                          torch.tensor([1000.0, 1002.0]).expand(n, 2))


def person(n=4):
    pose = torch.randn(n, 17, 3, dtype=torch.float64) * 300
    return pose - pose[:, :1]


def project_camera_frame(cams, points_cam):
    return cams.project(cams.camera_to_world(points_cam))


@pytest.mark.parametrize("distorted", [False, True])
def test_least_squares_root_recovers_the_true_root(distorted):
    torch.manual_seed(0)
    cams, pose = cameras(distorted=distorted), person()
    root = torch.tensor([[100.0, -50.0, 4500.0], [0.0, 0.0, 5200.0], [-300.0, 200.0, 3900.0], [50, 60, 6000.0]],
                        dtype=torch.float64)
    pixels = project_camera_frame(cams, pose + root[:, None])
    assert torch.allclose(least_squares_root(pose, pixels, cams), root, atol=1e-6)


def test_new_stages_start_as_the_identity_and_features_vanish_on_consistent_input():
    torch.manual_seed(0)
    cams, pose = cameras(), person()
    root = torch.tensor([0.0, 0.0, 5000.0], dtype=torch.float64).expand(4, 3)
    pixels = project_camera_frame(cams, pose + root[:, None])
    refiner = ResidualDescent(H36M17, num_stages=3, pca_components=10).double()
    refiner.fit(pixels + torch.randn_like(pixels) * 20)
    refiner.start_stage(2)
    refiner.eval()
    assert torch.equal(refiner(pose, pixels, cams, root), pose)
    assert refiner._feature(pose, root, refiner.inputs(pixels), cams).abs().max() < 1e-9  # delta of a perfect fit
    refiner.features = "proj"
    assert torch.allclose(refiner._feature(pose, root, refiner.inputs(pixels), cams), refiner.inputs(pixels))


def test_only_the_current_stage_trains():
    torch.manual_seed(0)
    cams, pose = cameras(8), person(8)
    root = torch.tensor([0.0, 0.0, 5000.0], dtype=torch.float64).expand(8, 3)
    pixels = project_camera_frame(cams, pose + root[:, None]) + torch.randn(8, 17, 2, dtype=torch.float64) * 5
    refiner = ResidualDescent(H36M17, num_stages=3).double()
    refiner.fit(pixels)
    for stage in refiner.stages:
        torch.nn.init.normal_(stage[-1].weight)  # make every stage act
    refiner.start_stage(1)
    refiner.train()
    frozen_stats = refiner.stages[0][1].running_mean.clone()
    refiner(pose, pixels, cams, root).sum().backward()
    assert not refiner.stages[0].training and refiner.stages[1].training
    assert torch.equal(refiner.stages[0][1].running_mean, frozen_stats)
    grads = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in s.parameters()) for s in refiner.stages]
    assert grads == [False, True, False]


class FixedStep(torch.nn.Module):
    """A stage that adds a given correction and records the feature it was shown."""

    def __init__(self, step):
        super().__init__()
        self.step, self.seen = step, None

    def forward(self, feature):
        self.seen = feature
        return self.step


@pytest.mark.parametrize("update_root", [False, True])
def test_update_root_solves_the_root_again_for_the_refined_pose(update_root):
    torch.manual_seed(0)
    cams, pose = cameras(distorted=False), person()
    root = torch.tensor([0.0, 0.0, 5000.0], dtype=torch.float64).expand(4, 3)
    pixels = project_camera_frame(cams, pose + root[:, None])          # exact 2D of the true pose
    start = pose * 1.3                                                   # a wrong lifted pose: its LS root is off
    refiner = ResidualDescent(H36M17, num_stages=2, root="least_squares", update_root=update_root).double()
    refiner.fit(pixels)
    refiner.stages[0] = FixedStep((pose - start)[:, 1:].flatten(1))     # stage 1 corrects the pose exactly
    refiner.stages[1] = FixedStep(torch.zeros(4, 48, dtype=torch.float64))
    refiner.start_stage(1)
    refiner.eval()
    assert torch.allclose(refiner(start, pixels, cams), pose)
    residual = refiner.stages[1].seen.abs().max()                        # stage 2's delta feature
    assert (residual < 1e-6) if update_root else (residual > 0.05)


def test_a_pelvis_missing_from_the_data_is_replaced_by_the_least_squares_root():
    torch.manual_seed(0)
    cams, pose = cameras(), person()
    root = torch.tensor([[100.0, -50.0, 4500.0], [0.0, 0.0, 5200.0], [-300.0, 200.0, 3900.0], [50, 60, 6000.0]],
                        dtype=torch.float64)
    pixels = project_camera_frame(cams, pose + root[:, None]) + torch.randn(4, 17, 2, dtype=torch.float64) * 5
    true_root = ResidualDescent(H36M17, num_stages=2).double()
    true_root.fit(pixels)
    for stage in true_root.stages:                      # stages that do something
        torch.nn.init.normal_(stage[-1].weight, std=0.1)
    true_root.start_stage(1)
    true_root.eval()
    fitted_root = ResidualDescent(H36M17, num_stages=2, root="least_squares").double()
    fitted_root.load_state_dict(true_root.state_dict())
    fitted_root.eval()
    missing = root.clone()
    missing[2] = float("nan")
    refined = true_root(pose, pixels, cams, missing)
    assert torch.isfinite(refined).all()
    assert torch.allclose(refined[2], fitted_root(pose, pixels, cams)[2])
    assert torch.allclose(refined[[0, 1, 3]], true_root(pose, pixels, cams, root)[[0, 1, 3]])
    assert not torch.allclose(refined[2], true_root(pose, pixels, cams, root)[2])


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="needs root 'least_squares'"):
        ResidualDescent(H36M17, update_root=True)
    with pytest.raises(ValueError, match="features must be one of delta, proj, cat"):
        ResidualDescent(H36M17, features="ori")
    with pytest.raises(ValueError, match="pca_components must be in 0..34"):
        ResidualDescent(H36M17, pca_components=40)
    with pytest.raises(ValueError, match="needs the true pelvis"):
        ResidualDescent(H36M17)(person(), torch.zeros(4, 17, 2, dtype=torch.float64), cameras())
