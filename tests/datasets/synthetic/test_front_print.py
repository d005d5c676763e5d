"""The front print of the synthetic world's bodies (DATASETS.SYNTHETIC.FRONT_PRINT)."""
import colorsys

import numpy as np
import pytest

from core.config import load_config
from core.skeleton import H36M17
from datasets import DatasetError
from datasets.synthetic import bodies
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec, world_spec_from_config
from datasets.synthetic.render import render_capsules
from datasets.synthetic.rigs import look_at


def render_rest_pose(body, azimuths_deg, size=160):
    """The body standing at the origin facing +x, seen from cameras 3.5 m away at the given azimuths (0: in front)."""
    joints = body.rest_pose_mm
    points = body.surface_points(joints)
    centre = joints[0] + [0.0, 0.0, 100.0]
    az = np.deg2rad(np.asarray(azimuths_deg, dtype=np.float64))
    eyes = centre + 3500.0 * np.stack([np.cos(az), np.sin(az), np.zeros_like(az)], axis=-1)
    R, t = look_at(eyes, np.broadcast_to(centre, eyes.shape))
    camera = np.einsum("vij,pj->vpi", R, points) + t[:, None]
    focal = np.full(len(az), 1.6 * size)
    pixels = focal[:, None, None] * camera[..., :2] / camera[..., 2:] + size / 2
    background = np.zeros((len(az), size, size, 3), dtype=np.uint8)
    part_joints, radius, colour = body.part_arrays()
    return render_capsules(pixels, camera[..., 2], focal, part_joints, radius, colour, background)[0]


@pytest.mark.parametrize("make", [lambda: bodies.make_body("S9", 0), lambda: bodies.make_sequence_body("S1/walk/0", 4)])
def test_the_print_is_seen_from_the_front_and_hidden_from_the_back(make):
    plain = make()
    printed = bodies.with_front_print(plain)
    assert printed.front_print and not plain.front_print and bodies.with_front_print(printed) is printed
    # every other part and colour is the plain body's; the print is the one part more, of the contrasting colour
    assert printed.parts[:-1] == plain.parts and printed.palette == plain.palette
    assert plain.num_points == H36M17.num_joints + len(bodies.LANDMARK_NAMES)
    assert printed.num_points == plain.num_points + len(bodies.PRINT_LANDMARK_NAMES)
    shirt = colorsys.rgb_to_hsv(*plain.palette["shirt"])
    ink = colorsys.rgb_to_hsv(*printed.parts[-1].colour)
    assert abs(ink[2] - shirt[2]) > 0.3 and min(abs(ink[0] - shirt[0]), 1 - abs(ink[0] - shirt[0])) == \
        pytest.approx(0.5, abs=1e-6)
    joints = plain.rest_pose_mm
    np.testing.assert_array_equal(printed.surface_points(joints)[:plain.num_points], plain.surface_points(joints))
    azimuths = [0, 30, 150, 180, 210]
    a, b = render_rest_pose(plain, azimuths), render_rest_pose(printed, azimuths)
    changed = (a != b).any(-1).sum(axis=(1, 2))  # per view: pixels the print changes
    front = changed[0]
    assert front > 0.01 * (a[0] > 0).any(-1).sum()  # measured: 3-5 % of the body's pixels
    assert changed[1] > 0.5 * front                # from 30 degrees aside still well seen
    assert (changed[2:] == 0).all()                # from behind: hidden by the chest


def test_a_world_with_prints_dresses_every_body_and_keeps_the_rest():
    spec = dict(subjects=["S1", "S9"], actions=["walk", "wave"], frames_per_sequence=6, seed=1, occluders=3)
    plain = SyntheticWorld(WorldSpec(**spec, body_per_sequence=True))
    printed = SyntheticWorld(WorldSpec(**spec, body_per_sequence=True, front_print=True))
    people = 0
    for a, b in zip(plain.sequences, printed.sequences):
        assert b.body.front_print and b.body.parts[:-1] == a.body.parts
        np.testing.assert_array_equal(a.keypoints_3d, b.keypoints_3d)
        np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
        assert [o.kind for o in a.occluders] == [o.kind for o in b.occluders]
        for oa, ob in zip(a.occluders, b.occluders):
            if ob.kind == "person":
                people += 1
                assert ob.body.front_print and len(ob.part_joints) == len(oa.part_joints) + 1
        # the scene's part indices still point at the right points: the occluders' follow the body's 23
        points = b.scene_points(slice(None))
        pairs = b.scene_parts()[0]
        assert points.shape[1] == b.body.num_points + sum(o.points_mm.shape[1] for o in b.occluders)
        assert pairs.max() < points.shape[1] and np.isfinite(points).all()
    assert people > 0
    # the print is a look of the images: it changes their cache key, and the default key is the old one
    key = [SyntheticMultiView(w, mode="images", image_size=32)._cache_key() for w in (plain, printed)]
    assert key[0] != key[1]


def test_the_config_key():
    cfg = load_config(None, [])
    assert cfg.DATASETS.SYNTHETIC.FRONT_PRINT is False and world_spec_from_config(cfg, "test").front_print is False
    cfg = load_config(None, ["DATASETS.SYNTHETIC.FRONT_PRINT", "True"])
    assert world_spec_from_config(cfg, "test").front_print is True  # the test subjects wear it too
    with pytest.raises(DatasetError, match="DATASETS.SYNTHETIC.FRONT_PRINT must be True or False, got 'yes'"):
        SyntheticWorld(WorldSpec(subjects=["S1"], actions=["walk"], frames_per_sequence=2, front_print="yes"))
