import torch

from core.geometry import triangulate_cameras
from core.geometry.mirror import (mirror_cameras, mirror_joints_2d, mirror_joints_3d, mirror_pixels, mirror_world,
                                  swap_left_right)
from core.skeleton import H36M17


def test_mirrored_cameras_see_the_mirrored_world_as_mirrored_pixels(generator, make_rig, make_points):
    cams = make_rig(generator, (3,), num_views=4)              # skew and lens distortion included
    points = make_points(generator, 3, 4, 50)
    mirrored = mirror_cameras(cams)
    assert torch.allclose(torch.linalg.det(mirrored.R), torch.ones(3, 4, dtype=torch.float64))
    expected = mirror_pixels(cams.project(points), cams)
    assert torch.allclose(mirrored.project(mirror_world(points)), expected, atol=1e-8)
    # the camera frame is mirrored too, so camera-frame targets flip by x -> -x
    assert torch.allclose(mirrored.world_to_camera(mirror_world(points)), mirror_world(cams.world_to_camera(points)))


def test_mirroring_is_an_involution_about_the_principal_point(generator, make_rig):
    cams = make_rig(generator, (2,), num_views=3, skew=0.0)
    pixels = torch.rand(2, 3, 10, 2, generator=generator, dtype=torch.float64) * 1000
    once = mirror_pixels(pixels, cams)
    assert torch.allclose(once[..., 0], 2 * cams.K[..., None, 0, 2] - pixels[..., 0])
    assert torch.allclose(once[..., 1], pixels[..., 1])
    assert torch.allclose(mirror_pixels(once, cams), pixels)
    twice = mirror_cameras(mirror_cameras(cams))
    assert all(torch.allclose(getattr(twice, f), getattr(cams, f)) for f in ("K", "R", "t", "dist"))


def test_mirrored_views_still_triangulate_to_the_mirrored_person(generator, make_rig, make_points):
    cams = make_rig(generator, (), num_views=4)
    pose = make_points(generator, H36M17.num_joints)
    pixels_2d = mirror_joints_2d(cams.project(pose.expand(4, -1, -1)), cams, H36M17)          # V, J, 2
    result = triangulate_cameras(mirror_cameras(cams).unsqueeze(0), pixels_2d.unsqueeze(0))
    assert torch.allclose(result.points_3d[0], mirror_joints_3d(pose, H36M17), atol=1e-6)


def test_swap_exchanges_left_and_right_joints():
    joints = torch.arange(H36M17.num_joints, dtype=torch.float64)[:, None].expand(-1, 3)
    swapped = swap_left_right(joints, H36M17)
    assert swapped[list(H36M17.left_joints), 0].tolist() == list(map(float, H36M17.right_joints))
    assert torch.equal(swap_left_right(swapped, H36M17), joints)
