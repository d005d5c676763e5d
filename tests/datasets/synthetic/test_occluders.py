"""Occluders of the synthetic world (DATASETS.SYNTHETIC.OCCLUDERS) and one body per training sequence
(DATASETS.SYNTHETIC.BODY_PER_SEQUENCE)."""
import itertools

import numpy as np
import pytest
import torch

from core.config import load_config
from core.skeleton import H36M17
from datasets import DatasetError, build_dataset
from datasets.synthetic import motion
from datasets.synthetic.bodies import (BODY_PART_NAMES, LANDMARK_NAMES, STATURE_RANGE_MM, SUBJECTS, make_body,
                                       make_sequence_body)
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec, world_spec_from_config
from datasets.synthetic.occluders import OCCLUDER_KINDS, scene_parts
from datasets.synthetic.render import joint_visibility, render_capsules
from datasets.synthetic.seeding import stable_seed

SPEC = dict(subjects=["S1", "S9"], actions=["walk", "squat", "wave", "bend_reach"], frames_per_sequence=12, seed=2)


@pytest.fixture(scope="module")
def worlds():
    """The same world without and with 3 occluders per sequence."""
    return SyntheticWorld(WorldSpec(**SPEC)), SyntheticWorld(WorldSpec(**SPEC, occluders=3))


def point_segment_distance(points, a, b):
    """Distances (..., N, P) from points (..., N, 3) to the segments a-b (..., P, 3)."""
    points, a, b = points[..., :, None, :], a[..., None, :, :], b[..., None, :, :]
    ab = b - a
    t = np.clip(((points - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[..., None] * ab), axis=-1)


# ----- occluders -------------------------------------------------------------------------------------
def test_occluders_hide_joints_in_one_view_that_the_others_see(worlds):
    plain, occluded = worlds
    kinds = {o.kind for seq in occluded.sequences for o in seq.occluders}
    assert all(len(seq.occluders) == 3 for seq in occluded.sequences) and kinds == set(OCCLUDER_KINDS)
    for a, b in zip(plain.sequences, occluded.sequences):  # the motion and its projections are untouched
        assert np.array_equal(a.keypoints_3d, b.keypoints_3d) and np.array_equal(a.keypoints_2d_gt, b.keypoints_2d_gt)
        assert not (b.visibility & ~a.visibility).any()  # an occluder never reveals a joint
    before = np.concatenate([s.visibility for s in plain.sequences])
    after = np.concatenate([s.visibility for s in occluded.sequences])
    assert (1 - after.mean()) > (1 - before.mean()) + 0.12  # measured: 0.26 -> 0.42
    hidden = before & ~after                                # (T, V, J) joint-views hidden by an occluder
    frame, view, joint = np.nonzero(hidden)
    seen_elsewhere = after[frame, :, joint].sum(-1)         # the views that still see that joint (not `view`)
    assert (seen_elsewhere >= 2).mean() > 0.6               # measured: 0.66 (0.88 with one occluder)
    # each occluder hides joints in the view it was placed for, hardly in the others
    for a, b in zip(plain.sequences, occluded.sequences):
        placed = np.zeros(len(b.cameras), dtype=bool)
        placed[[o.camera for o in b.occluders]] = True
        lost = (a.visibility & ~b.visibility).sum(axis=(0, 2))  # per view
        assert lost[~placed].sum() <= 0.05 * lost.sum() + 1


def test_occluders_never_touch_the_person(worlds):
    for seq in worlds[1].sequences:
        surface = seq.body.surface_points(seq.keypoints_3d)  # T, 21, 3
        body_radius = seq.body.part_arrays()[1].max()
        for o in seq.occluders:
            a, b = o.points_mm[:, o.part_joints[:, 0]], o.points_mm[:, o.part_joints[:, 1]]
            gap = point_segment_distance(surface, a, b) - o.part_radius_mm  # T, 21, P: to the occluder's surface
            assert gap.min() > body_radius, (seq.name, o.kind)
            assert o.points_mm[..., 2].min() >= 0.0  # on or above the floor
            if o.kind == "person":
                assert o.points_mm.shape == (len(seq.keypoints_3d), H36M17.num_joints + len(LANDMARK_NAMES), 3)
                assert np.ptp(o.points_mm, axis=0).max() > 10.0  # it moves


def test_visibility_agrees_with_the_rendered_depth_buffer(worlds):
    plain, occluded = worlds
    # the frame where the occluders hide the most joints
    hidden = [(a.visibility & ~b.visibility).sum(axis=(1, 2)) for a, b in zip(plain.sequences, occluded.sequences)]
    number = int(np.argmax([h.max() for h in hidden]))
    seq, frame = occluded.sequences[number], int(np.argmax(hidden[number]))
    assert hidden[number][frame] >= 3
    cameras, tolerance = seq.cameras, np.float32(10.0)
    points = torch.from_numpy(seq.scene_points(frame)).expand(len(cameras), -1, -1)
    pixels = cameras.project(points).numpy()
    depth = cameras.world_to_camera(points)[..., 2].numpy()
    focal = cameras.focal_lengths.mean(-1).numpy()
    pairs, radius, colour = seq.scene_parts()
    width, height = (int(v) for v in cameras.image_size[0])
    visible = joint_visibility(pixels, depth, focal, pairs, radius, (width, height), num_queried=H36M17.num_joints)
    np.testing.assert_array_equal(visible, seq.visibility[frame])

    background = np.zeros((len(cameras), height, width, 3), dtype=np.uint8)
    images, depth_buffer = render_capsules(pixels, depth, focal, pairs, radius, colour, background)
    pixel = np.floor(pixels[:, :H36M17.num_joints] + 0.5).astype(int)
    inside = ((pixel >= 0) & (pixel < [width, height])).all(-1)
    col, row = pixel[..., 0].clip(0, width - 1), pixel[..., 1].clip(0, height - 1)
    views = np.arange(len(cameras))[:, None]
    front = depth_buffer[views, row, col]
    for joint in range(H36M17.num_joints):
        incident = (pairs == joint).any(axis=1)  # the joint's own parts (all of the body)
        _, own_buffer = render_capsules(pixels, depth, focal, pairs[incident], radius[incident], colour[incident],
                                        background)
        own = np.minimum(depth[:, joint].astype(np.float32), own_buffer[views[:, 0], row[:, joint], col[:, joint]])
        expected = inside[:, joint] & (front[:, joint] >= own - tolerance)
        np.testing.assert_array_equal(visible[:, joint], expected, err_msg=f"joint {joint}")
    # where an occluder hid a joint, an occluder's surface is in front of it in the depth buffer
    body_parts = len(seq.body.parts)
    _, occluder_buffer = render_capsules(pixels, depth, focal, pairs[body_parts:], radius[body_parts:],
                                         colour[body_parts:], background)
    lost = plain.sequences[number].visibility[frame] & ~visible
    in_front = occluder_buffer[views, row, col] < depth[:, :H36M17.num_joints] - tolerance
    assert lost.any() and in_front[lost].all()
    # and the occluders are drawn in the images
    assert (np.isfinite(occluder_buffer) & (images.sum(-1) > 0)).sum() > 1000


def test_occluders_are_in_the_crops_but_not_in_the_crop_box(worlds):
    plain, occluded = worlds
    a, b = (SyntheticMultiView(w, mode="images", image_size=64) for w in worlds)
    seen = 0
    for index in range(0, len(a), 7):
        sa, sb = a[index], b[index]
        assert torch.equal(sa["cameras"].K, sb["cameras"].K)  # the crop box comes from the person alone
        assert torch.equal(sa["keypoints_2d_crop"], sb["keypoints_2d_crop"])
        assert not torch.equal(sa["images"], sb["images"])
        seen += int((sa["visibility"] > sb["visibility"]).sum())
    assert seen > 0
    assert torch.equal(b[5]["images"], SyntheticMultiView(occluded, mode="images", image_size=64)[5]["images"])


def test_detector_noise_follows_the_occlusion(worlds):
    plain, occluded = worlds
    error = {True: [], False: []}
    for a, b in zip(plain.sequences, occluded.sequences):
        lost = a.visibility & ~b.visibility
        assert not np.array_equal(a.confidence_2d, b.confidence_2d)
        distance = np.linalg.norm(b.keypoints_2d - b.keypoints_2d_gt, axis=-1)
        error[True].append(distance[lost])
        error[False].append(distance[b.visibility])
    assert np.median(np.concatenate(error[True])) > 1.5 * np.median(np.concatenate(error[False]))


def test_occluders_are_deterministic_and_seeded():
    spec = dict(subjects=["S5"], actions=["kick", "turn"], frames_per_sequence=6, occluders=4)
    first, second = SyntheticWorld(WorldSpec(**spec)), SyntheticWorld(WorldSpec(**spec))
    other = SyntheticWorld(WorldSpec(**spec, seed=1))
    for a, b, c in zip(first.sequences, second.sequences, other.sequences):
        assert [o.kind for o in a.occluders] == [o.kind for o in b.occluders]
        for x, y in zip(a.occluders, b.occluders):
            assert x.camera == y.camera and np.array_equal(x.points_mm, y.points_mm)
        assert np.array_equal(a.visibility, b.visibility) and np.array_equal(a.keypoints_2d, b.keypoints_2d)
        assert not np.allclose(a.occluders[0].points_mm[0, 0], c.occluders[0].points_mm[0, 0])
    pairs, radius, colour = scene_parts(a.body, a.occluders)
    assert len(pairs) == len(radius) == len(colour) == len(a.body.parts) + sum(len(o.part_joints) for o in a.occluders)
    assert pairs.max() == a.scene_points(0).shape[0] - 1


def test_random_rigs_and_test_worlds_get_occluders_too():
    w = SyntheticWorld(WorldSpec(subjects=["S11"], actions=["jump", "sit"], frames_per_sequence=5, rig="random",
                                 num_cameras=3, occluders=2))
    assert all(len(s.occluders) == 2 and all(0 <= o.camera < 3 for o in s.occluders) for s in w.sequences)
    cfg = load_config(None, ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "4",
                             "DATASETS.SYNTHETIC.OCCLUDERS", "1"])
    assert world_spec_from_config(cfg, "test").occluders == 1


# ----- one body per training sequence ----------------------------------------------------------------
def body_config(per_sequence: bool, *extra):
    return load_config(None, ["DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1', 'S5']", "DATASETS.SYNTHETIC.ACTIONS",
                              "['walk', 'kick']", "DATASETS.SYNTHETIC.SEQUENCES_PER_ACTION", "2",
                              "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "5",
                              "DATASETS.SYNTHETIC.BODY_PER_SEQUENCE", str(per_sequence), *extra])


def body_signature(body):
    return (tuple(np.round(body.bone_lengths_mm, 6)), tuple(round(p.radius_mm, 6) for p in body.parts),
            tuple(sorted(body.palette.items())), body.height_mm)


def test_every_training_sequence_gets_its_own_body():
    on, off = body_config(True), body_config(False)
    train = SyntheticWorld(world_spec_from_config(on, "train"))
    assert len(train.sequences) == 2 * 2 * 2
    bodies = [s.body for s in train.sequences]
    assert [b.subject for b in bodies] == [s.name for s in train.sequences]  # named after their sequence
    assert {s.subject for s in train.sequences} == {"S1", "S5"}              # the samples keep their subject
    for x, y in itertools.combinations(bodies, 2):
        assert not np.allclose(x.bone_lengths_mm, y.bone_lengths_mm, rtol=1e-3)
        assert not np.allclose([p.radius_mm for p in x.parts], [p.radius_mm for p in y.parts], rtol=1e-3)
        assert x.palette["shirt"] != y.palette["shirt"] and x.palette != y.palette
    again = SyntheticWorld(world_spec_from_config(on, "train"))
    assert [body_signature(b) for b in bodies] == [body_signature(s.body) for s in again.sequences]
    assert all(np.array_equal(a.keypoints_2d, b.keypoints_2d) for a, b in zip(train.sequences, again.sequences))
    flag_off = SyntheticWorld(world_spec_from_config(off, "train"))
    assert len({body_signature(s.body) for s in flag_off.sequences}) == 2  # one body per subject


def test_the_test_subjects_keep_their_bodies():
    on, off = (SyntheticWorld(world_spec_from_config(body_config(flag), "test")) for flag in (True, False))
    assert {s.subject for s in on.sequences} == {"S9", "S11"}
    for a, b in zip(on.sequences, off.sequences):
        assert body_signature(a.body) == body_signature(b.body) == body_signature(make_body(a.subject, 0))
        for key in ("keypoints_3d", "keypoints_2d", "keypoints_2d_gt", "confidence_2d", "visibility"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
    held_out = body_config(True, "DATASETS.VAL_SUBJECTS", "['S5']")
    assert world_spec_from_config(held_out, "train").body_per_sequence
    assert not world_spec_from_config(held_out, "val").body_per_sequence  # like the test split


def test_sequence_bodies_span_a_wide_range_of_people():
    bodies = [make_sequence_body(f"S1/walk/{k}", 0) for k in range(60)]
    subjects = [make_body(s, k) for s in SUBJECTS for k in range(9)]

    def spread(values):
        return np.ptp(np.asarray(values), axis=0)
    girth = [[p.radius_mm / b.height_mm for p in b.parts][BODY_PART_NAMES.index("r_thigh")] for b in bodies]
    subject_girth = [[p.radius_mm / b.height_mm for p in b.parts][BODY_PART_NAMES.index("r_thigh")]
                     for b in subjects]
    assert spread(girth) > 1.2 * spread(subject_girth)
    heights = [b.height_mm for b in bodies]
    assert STATURE_RANGE_MM[0] <= min(heights) and max(heights) <= STATURE_RANGE_MM[1]
    assert np.std(heights) > 60
    ratios = np.array([b.bone_lengths_mm / b.height_mm for b in bodies])
    assert (ratios.std(0) / ratios.mean(0)).mean() > 0.04  # bone proportions vary (subjects: about 0.035)
    for body in bodies:  # still adult and symmetric
        lengths = body.bone_lengths_mm / body.height_mm
        assert 0.2 < lengths[1] < 0.3 and 0.13 < lengths[14] < 0.2  # r thigh, r upper arm
        np.testing.assert_allclose(body.offsets_mm[[4, 5, 6, 11, 12, 13]] * [1, -1, 1],
                                   body.offsets_mm[[1, 2, 3, 14, 15, 16]])
    for key in ("skin", "trousers", "shoes", "hair"):
        assert len({b.palette[key] for b in bodies}) == len(bodies)
    assert np.mean([b.palette["trousers"] != b.palette["shirt"] for b in bodies]) > 0.9
    a, b = make_sequence_body("S1/walk/0", 0), make_sequence_body("S1/walk/0", 0)
    assert body_signature(a) == body_signature(b)
    assert body_signature(a) != body_signature(make_body("S1/walk/0", 0))
    assert body_signature(a) != body_signature(make_sequence_body("S1/walk/0", 1))
    with pytest.raises(ValueError, match="name"):
        make_sequence_body("", 0)


# ----- defaults, cache key and checks ------------------------------------------------------------------
def test_defaults_leave_the_world_as_it_was():
    cfg = load_config(None, [])
    assert cfg.DATASETS.SYNTHETIC.BODY_PER_SEQUENCE is False and cfg.DATASETS.SYNTHETIC.OCCLUDERS == 0
    spec = world_spec_from_config(cfg, "train")
    assert spec.body_per_sequence is False and spec.occluders == 0
    world = SyntheticWorld(WorldSpec(subjects=["S1"], actions=["kick"], frames_per_sequence=6, seed=3))
    seq = world.sequences[0]
    body = make_body("S1", 3)
    assert seq.occluders == () and body_signature(seq.body) == body_signature(body)
    points = motion.generate_sequence(body, "kick", 6, fps=50.0, seed=stable_seed(3, "S1/kick/0"))
    np.testing.assert_array_equal(seq.keypoints_3d, points.astype(np.float32))
    # visibility from the body alone, as before occluders existed
    surface = torch.from_numpy(body.surface_points(points)).reshape(1, -1, 3).expand(len(seq.cameras), -1, -1)
    pixels = seq.cameras.project(surface).reshape(len(seq.cameras), 6, -1, 2).transpose(0, 1).numpy()
    depth = seq.cameras.world_to_camera(surface)[..., 2].reshape(len(seq.cameras), 6, -1).transpose(0, 1).numpy()
    pairs, radius, _ = body.part_arrays()
    focal = np.broadcast_to(seq.cameras.focal_lengths.mean(-1).numpy(), (6, len(seq.cameras))).reshape(-1)
    visible = joint_visibility(pixels.reshape(-1, pixels.shape[2], 2), depth.reshape(-1, depth.shape[2]), focal, pairs,
                               radius, (1000, 1000))[:, :H36M17.num_joints]
    np.testing.assert_array_equal(seq.visibility, visible.reshape(6, len(seq.cameras), H36M17.num_joints))
    # the image cache key of a spec at the defaults is the one it had before the two fields existed
    world = SyntheticWorld(WorldSpec(subjects=["S1", "S9"], actions=["walk", "kick"], frames_per_sequence=10, seed=3))
    dataset = SyntheticMultiView(world, mode="images", image_size=64)
    assert dataset._cache_key() == "363c2f0b534b0eff"


def test_the_image_cache_key_follows_the_new_keys():
    def key(**kw):
        world = SyntheticWorld(WorldSpec(subjects=["S1"], actions=["wave"], frames_per_sequence=2, **kw))
        return SyntheticMultiView(world, mode="images", image_size=32)._cache_key()
    keys = [key(), key(body_per_sequence=True), key(occluders=1), key(occluders=2),
            key(body_per_sequence=True, occluders=2)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("kw, message", [
    (dict(occluders=-1), "DATASETS.SYNTHETIC.OCCLUDERS must be a non-negative integer"),
    (dict(occluders=1.5), "DATASETS.SYNTHETIC.OCCLUDERS must be a non-negative integer"),
    (dict(occluders=True), "DATASETS.SYNTHETIC.OCCLUDERS must be a non-negative integer"),
    (dict(body_per_sequence="yes"), "DATASETS.SYNTHETIC.BODY_PER_SEQUENCE must be True or False, got 'yes'"),
    (dict(body_per_sequence=1), "DATASETS.SYNTHETIC.BODY_PER_SEQUENCE must be True or False, got 1"),
])
def test_bad_values_name_the_key(kw, message):
    with pytest.raises(DatasetError) as err:
        SyntheticWorld(WorldSpec(subjects=["S1"], actions=["walk"], frames_per_sequence=2, **kw))
    assert message in str(err.value)


def test_bad_values_from_the_config():
    cfg = load_config(None, ["DATASETS.SYNTHETIC.OCCLUDERS", "-2", "DATASETS.SYNTHETIC.ACTIONS", "['walk']"])
    with pytest.raises(DatasetError, match=r"DATASETS.SYNTHETIC.OCCLUDERS must be a non-negative integer .*got -2"):
        build_dataset(cfg, "test")
    cfg = load_config(None, [])
    cfg.defrost()
    cfg.DATASETS.SYNTHETIC.BODY_PER_SEQUENCE = "no"  # past the config's own type check (e.g. a YAML string)
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="BODY_PER_SEQUENCE must be True or False, got 'no'"):
            world_spec_from_config(cfg, split)
