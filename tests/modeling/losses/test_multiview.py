import torch

from core.skeleton import H36M17
from core.batch import collate_samples
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec
from datasets.synthetic.noise import DetectorNoise
from modeling.losses.multiview import multiview_consistency_losses, relative_rotations


def exact_batch(n=6):
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=n,
                                     noise=DetectorNoise.none()))
    ds = SyntheticMultiView(world, views="all")
    return collate_samples([ds[i] for i in range(n)])


def true_camera_poses(batch):
    cameras = batch["cameras"]
    world = batch["keypoints_3d"][:, 0].double().unsqueeze(1).expand(-1, cameras.batch_shape[1], -1, -1)
    in_cameras = cameras.world_to_camera(world)
    return (in_cameras - in_cameras[..., H36M17.root:H36M17.root + 1, :]).float()


def test_losses_vanish_on_consistent_input_and_grow_with_errors():
    batch = exact_batch()
    kp, cams = batch["keypoints_2d"][:, 0], batch["cameras"]
    truth = true_camera_poses(batch)
    losses = multiview_consistency_losses(truth, kp, cams, 0, reprojection_weight=1.0)
    assert set(losses) == {"triangulation", "rigid", "reprojection"}
    assert all(float(v) < 0.05 for v in losses.values()), losses       # mm / px: float32 2D only
    wrong = truth.clone().requires_grad_(True)
    with torch.no_grad():
        wrong[:, 1, 5, 0] += 30.0                                          # view 1, joint 5, 30 mm off on x
    bad = {k: v for k, v in multiview_consistency_losses(wrong, kp, cams, 0, reprojection_weight=1.0).items()}
    values = {k: v.item() for k, v in bad.items()}
    # L1 over 16 joints x 3 coordinates (a mean over samples): 30 / 48 for the one wrong view
    assert abs(values["triangulation"] - 30 / 48) < 0.05
    # view 1 rotated into each of the 3 others: the rotated 30 mm error has an L1 norm in [30, 30 sqrt(3)]
    assert 3 * 30 / 48 - 0.1 < values["rigid"] < 3 * 30 * 3 ** 0.5 / 48 + 0.1
    assert values["reprojection"] > 0.3                                 # about 7 px of one joint, 4 target views
    sum(bad.values()).backward()
    assert (wrong.grad[:, 1, 5, 0] > 0).all()                             # pulled back towards the truth


def test_relative_rotations_map_one_camera_frame_into_another():
    cams = exact_batch(1)["cameras"]
    rot = relative_rotations(cams)[0]
    assert torch.allclose(rot[2, 3] @ cams.R[0, 2], cams.R[0, 3])
    assert torch.allclose(rot[1, 1], torch.eye(3, dtype=rot.dtype))


def test_a_joint_behind_a_camera_is_left_out_of_the_reprojection_not_nan():
    batch = exact_batch(2)
    kp, cams = batch["keypoints_2d"][:, 0], batch["cameras"]
    pred = true_camera_poses(batch)
    pred[:, 0, 12] = torch.tensor([0.0, 0.0, -1.0e5])                  # view 0's left elbow 100 m behind it
    losses = multiview_consistency_losses(pred, kp, cams, 0, reprojection_weight=1.0)
    assert all(torch.isfinite(v) for v in losses.values())
