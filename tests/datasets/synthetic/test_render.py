import numpy as np
import pytest

from datasets.synthetic.render import joint_visibility, random_backgrounds, render_capsules

RED, BLUE, WHITE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0)
FRONT_LIGHT = (0.0, 0.0, -1.0)  # straight from the camera: the centre of a round part is fully lit

# A made-up standing person (world mm, z up) in the Human3.6M joint order, and its capsules.
PERSON_MM = np.array([
    [0, 0, 950], [-110, 0, 940], [-130, 30, 520], [-140, 0, 90], [110, 0, 940], [150, -150, 540],
    [160, -40, 120], [0, 0, 1180], [0, 0, 1420], [0, 0, 1530], [0, -20, 1680], [180, 0, 1400],
    [330, -150, 1180], [380, -380, 1250], [-180, 0, 1400], [-250, 0, 1130], [-280, 0, 860]], dtype=float)
PART_JOINTS = np.array([(0, 7), (7, 8), (1, 4), (11, 14), (8, 9), (10, 10), (9, 10), (1, 2), (2, 3), (4, 5),
                        (5, 6), (11, 12), (12, 13), (14, 15), (15, 16), (13, 13), (16, 16)])
PART_RADIUS_MM = np.array([125, 135, 95, 70, 50, 105, 45, 70, 52, 70, 52, 45, 38, 45, 38, 40, 40], dtype=float)
PART_COLOR = np.random.default_rng(0).uniform(0.2, 1.0, (len(PART_JOINTS), 3))


def plain_background(num_views, height=128, width=128, value=30):
    return np.full((num_views, height, width, 3), value, dtype=np.uint8)


def project_person(rng, num_views, size=128, focal=220.0):
    """Random pose jitter seen by cameras on a circle around the person: pixels, depths, focals."""
    joints = PERSON_MM + rng.normal(0.0, 60.0, PERSON_MM.shape)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, num_views)
    center = np.stack([3500 * np.cos(azimuth), 3500 * np.sin(azimuth), rng.uniform(500, 2000, num_views)], -1)
    forward = np.array([0.0, 0.0, 900.0]) - center
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    rotation = np.stack([right, np.cross(forward, right), forward], axis=1)  # (V, 3, 3) world -> camera
    camera = np.einsum("vij,vnj->vni", rotation, joints[None] - center[:, None])
    pixels = focal * camera[..., :2] / camera[..., 2:] + size / 2
    return pixels, camera[..., 2], np.full(num_views, focal)


def test_single_sphere_is_a_lit_disc_of_the_right_size_colour_and_depth():
    center = np.array([[[64.0, 50.0]]])
    color = np.array([[0.2, 0.6, 1.0]])
    images, depth = render_capsules(center, [[2000.0]], [1000.0], [[0, 0]], [40.0], color,
                                    plain_background(1), light_dir=FRONT_LIGHT)
    assert images.shape == (1, 128, 128, 3) and images.dtype == np.uint8
    assert depth.shape == (1, 128, 128) and depth.dtype == np.float32
    rows, cols = np.mgrid[:128, :128]
    distance = np.hypot(cols - 64, rows - 50)
    radius_px = 40.0 * 1000.0 / 2000.0
    body = np.isfinite(depth[0])
    assert body[distance < radius_px - 0.5].all() and not body[distance > radius_px + 0.5].any()
    assert abs(body.sum() - np.pi * radius_px ** 2) < 0.03 * np.pi * radius_px ** 2
    assert (images[0][~body] == 30).all()
    np.testing.assert_allclose(images[0, 50, 64], np.round(color[0] * 255), atol=1)
    assert depth[0, 50, 64] == pytest.approx(2000.0 - 40.0, abs=0.01)
    # Sphere-like depth: it grows away from the centre, up to the axis depth at the rim.
    profile = depth[0, 50, 64:84]
    assert (np.diff(profile) > 0).all() and profile[-1] <= 2000.0
    # Lambert shading with the light in front: darker towards the rim.
    assert images[0, 50, 64].sum() > images[0, 50, 80].sum()


def test_default_light_comes_from_the_upper_left():
    images, _ = render_capsules([[[64.0, 64.0]]], [[2000.0]], [1000.0], [[0, 0]], [80.0], [WHITE],
                                plain_background(1))
    assert images[0, 50, 50].astype(int).sum() > images[0, 78, 78].astype(int).sum() + 100


def test_capsule_covers_a_stadium_with_interpolated_radius():
    # Ends at depths 1000 and 2000: radii 20 px and 10 px.
    images, depth = render_capsules([[[30.0, 64.0], [100.0, 64.0]]], [[1000.0, 2000.0]], [1000.0], [[0, 1]],
                                    [20.0], [WHITE], plain_background(1))
    body = np.isfinite(depth[0])
    half_height = body.sum(axis=0) / 2.0  # per column
    assert half_height[30] == pytest.approx(20, abs=1) and half_height[100] == pytest.approx(10, abs=1)
    assert half_height[65] == pytest.approx(15, abs=1)
    assert half_height[12] > 0 and half_height[112] == 0  # round cap of 20 px at the near end only
    # Axis depth interpolated between the ends, minus the bulge.
    assert depth[0, 64, 65] == pytest.approx(1500.0 - 20.0, abs=10.0)


def crossing_scene():
    """A near red bar (joints 0-1) over a far blue bar (joints 2-3) whose joint 2 lies under the red one."""
    joints = np.array([[[20.0, 64.0], [108.0, 64.0], [64.0, 64.0], [64.0, 120.0]]])
    depth = np.array([[1000.0, 1000.0, 3000.0, 3000.0]])
    return joints, depth, np.array([500.0]), np.array([[0, 1], [2, 3]]), np.array([20.0, 60.0])


def test_nearer_capsule_occludes_farther_one_whatever_the_part_order():
    joints, depth, focal, parts, radius = crossing_scene()
    images, depth_buffer = render_capsules(joints, depth, focal, parts, radius, [RED, BLUE], plain_background(1))
    assert images[0, 64, 64, 0] > 150 and images[0, 64, 64, 2] < 50  # red in front
    assert images[0, 100, 64, 2] > 150 and images[0, 100, 64, 0] < 50  # blue below it
    assert depth_buffer[0, 64, 64] == pytest.approx(1000.0 - 20.0, abs=1.0)
    assert 3000.0 - 60.0 - 1.0 < depth_buffer[0, 100, 64] <= 3000.0
    swapped_images, swapped_depth = render_capsules(joints, depth, focal, parts[::-1], radius[::-1],
                                                    [BLUE, RED], plain_background(1))
    np.testing.assert_array_equal(swapped_images, images)
    np.testing.assert_array_equal(swapped_depth, depth_buffer)


def test_joint_under_a_nearer_part_is_not_visible():
    joints, depth, focal, parts, radius = crossing_scene()
    visible = joint_visibility(joints, depth, focal, parts, radius, (128, 128))
    assert visible.shape == (1, 4) and visible.dtype == bool
    np.testing.assert_array_equal(visible[0], [True, True, False, True])
    # Moving the far bar's joint into the image's corner, out of the red bar, makes it visible.
    joints[0, 2] = (10.0, 10.0)
    assert joint_visibility(joints, depth, focal, parts, radius, (128, 128))[0, 2]


def test_joints_outside_the_image_are_not_visible():
    joints = np.array([[[-3.0, 10.0], [10.0, 130.0], [127.4, 127.4], [50.0, 50.0]]])
    visible = joint_visibility(joints, np.full((1, 4), 2000.0), [500.0], [[0, 0], [1, 1], [2, 2], [3, 3]],
                               np.full(4, 30.0), (128, 128))
    np.testing.assert_array_equal(visible[0], [False, False, True, True])


def test_visibility_agrees_with_the_rendered_depth_buffer():
    rng = np.random.default_rng(1)
    num_views, tolerance = 24, 10.0
    pixels, depth, focal = project_person(rng, num_views)
    visible = joint_visibility(pixels, depth, focal, PART_JOINTS, PART_RADIUS_MM, (128, 128), tolerance)
    _, depth_buffer = render_capsules(pixels, depth, focal, PART_JOINTS, PART_RADIUS_MM, PART_COLOR,
                                      plain_background(num_views))
    pixel = np.floor(pixels + 0.5).astype(int)
    inside = ((pixel >= 0) & (pixel <= 127)).all(-1)
    col, row = pixel[..., 0].clip(0, 127), pixel[..., 1].clip(0, 127)
    views = np.arange(num_views)[:, None]
    front = depth_buffer[views, row, col]  # (V, J)
    for joint in range(len(PERSON_MM)):
        # The joint's own surface: the depth buffer of the parts that contain it, alone.
        incident = (PART_JOINTS == joint).any(axis=1)
        _, own_buffer = render_capsules(pixels, depth, focal, PART_JOINTS[incident], PART_RADIUS_MM[incident],
                                        PART_COLOR[incident], plain_background(num_views))
        own = np.minimum(depth[:, joint].astype(np.float32), own_buffer[np.arange(num_views), row[:, joint],
                                                                        col[:, joint]])
        expected = inside[:, joint] & (front[:, joint] >= own - np.float32(tolerance))
        np.testing.assert_array_equal(visible[:, joint], expected, err_msg=f"joint {joint}")
    assert 0.05 < 1.0 - visible.mean() < 0.5  # the scenes do have occlusions, and mostly visible joints


def test_visibility_of_the_leading_joints_only():
    """``num_queried``: a person's joints tested against every part, those of another object included."""
    rng = np.random.default_rng(4)
    pixels, depth, focal = project_person(rng, 6)
    # a sphere (joint 17) between each camera and the person's chest hides some joints
    pixels = np.concatenate([pixels, pixels[:, 8:9]], axis=1)
    depth = np.concatenate([depth, depth[:, 8:9] - 1500.0], axis=1)
    parts, radius = np.concatenate([PART_JOINTS, [[17, 17]]]), np.append(PART_RADIUS_MM, 150.0)
    everything = joint_visibility(pixels, depth, focal, parts, radius, (128, 128))
    person = joint_visibility(pixels, depth, focal, parts, radius, (128, 128), num_queried=17)
    assert person.shape == (6, 17)
    np.testing.assert_array_equal(person, everything[:, :17])
    assert everything[:, 17].all() and not person[:, 8].any()  # the sphere itself is seen, the chest is not
    alone = joint_visibility(pixels[:, :17], depth[:, :17], focal, PART_JOINTS, PART_RADIUS_MM, (128, 128))
    assert (alone & ~person).any() and not (person & ~alone).any()
    for bad in (-1, 19, 2.0, True):
        with pytest.raises(ValueError, match="num_queried"):
            joint_visibility(pixels, depth, focal, parts, radius, (128, 128), num_queried=bad)


def test_grain_is_deterministic_and_only_on_the_body():
    rng = np.random.default_rng(2)
    pixels, depth, focal = project_person(rng, 2)
    background = random_backgrounds(rng, 2, 128, 128)
    args = (pixels, depth, focal, PART_JOINTS, PART_RADIUS_MM, PART_COLOR, background)
    plain, depth_buffer = render_capsules(*args)
    first, _ = render_capsules(*args, rng=np.random.default_rng(5))
    second, _ = render_capsules(*args, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
    changed = (first != plain).any(-1)
    assert changed.any() and not (changed & ~np.isfinite(depth_buffer)).any()
    np.testing.assert_array_equal(plain[~np.isfinite(depth_buffer)], background[~np.isfinite(depth_buffer)])


def test_per_view_light_and_parts_off_the_image():
    joints = np.array([[[64.0, 64.0], [500.0, 500.0]], [[64.0, 64.0], [-400.0, 64.0]]])
    lights = np.array([[0.0, -1.0, -0.2], [0.0, 1.0, -0.2]])  # from above, from below
    images, depth = render_capsules(joints, np.full((2, 2), 2000.0), [1000.0, 1000.0], [[0, 0], [1, 1]],
                                    [60.0, 60.0], [WHITE, RED], plain_background(2), light_dir=lights)
    assert images[0, 45, 64].sum() > images[0, 83, 64].sum() and images[1, 45, 64].sum() < images[1, 83, 64].sum()
    assert np.isfinite(depth[0]).sum() == np.isfinite(depth[1]).sum() > 0  # the same white sphere only
    assert not (images[..., 1] == 0).any()  # the red sphere, off the image, drew nothing


def test_render_rejects_bad_input():
    joints, depth, focal, parts, radius = crossing_scene()
    good = dict(joints_px=joints, depth_mm=depth, focal_px=focal, part_joints=parts, part_radius_mm=radius,
                part_color=[RED, BLUE], background=plain_background(1))
    bad_cases = {
        "joints_px": joints[0], "depth_mm": -depth, "focal_px": [0.0], "part_joints": [[0, 4], [2, 3]],
        "part_radius_mm": [20.0], "part_color": [RED, (2.0, 0.0, 0.0)], "background": plain_background(2),
    }
    for name, value in bad_cases.items():
        with pytest.raises(ValueError):
            render_capsules(**{**good, name: value})
    nan_joints = joints.copy()
    nan_joints[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="joints_px"):
        render_capsules(**{**good, "joints_px": nan_joints})
    with pytest.raises(ValueError, match="background"):
        render_capsules(**{**good, "background": plain_background(1).astype(np.float32)})
    with pytest.raises(ValueError, match="part_joints"):
        render_capsules(**{**good, "part_joints": parts.astype(float)})
    with pytest.raises(ValueError, match="light_dir"):
        render_capsules(**good, light_dir=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="image_size"):
        joint_visibility(joints, depth, focal, parts, radius, (128,))


def test_backgrounds_are_deterministic_varied_and_well_formed():
    backgrounds = random_backgrounds(np.random.default_rng(3), 16, 64, 96)
    assert backgrounds.shape == (16, 64, 96, 3) and backgrounds.dtype == np.uint8
    assert backgrounds.flags.c_contiguous
    np.testing.assert_array_equal(backgrounds, random_backgrounds(np.random.default_rng(3), 16, 64, 96))
    assert (backgrounds != random_backgrounds(np.random.default_rng(4), 16, 64, 96)).mean() > 0.9
    mean_colors = backgrounds.reshape(16, -1, 3).mean(axis=1)
    assert mean_colors.std(axis=0).min() > 15  # images differ from each other
    assert (backgrounds.reshape(16, -1, 3).std(axis=1).mean(axis=1) > 5).all()  # none is flat
    assert random_backgrounds(np.random.default_rng(0), 0, 8, 8).shape == (0, 8, 8, 3)
    assert random_backgrounds(np.random.default_rng(0), 2, 8, 8, max_shapes=0).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError):
        random_backgrounds(np.random.default_rng(0), 2, 0, 8)
