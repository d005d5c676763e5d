"""Skeletons as data: the layouts, their left/right swaps, trees and conversions."""
import numpy as np
import pytest

from core.config import load_config
from core.skeleton import (H36M17, H36M17_LEARNABLE_TRIANGULATION, HAND21, MPI_INF_3DHP17, PANOPTIC19, SKELETONS,
                           Skeleton, SkeletonError, get_skeleton, joint_map, skeleton_of)


@pytest.mark.parametrize("skeleton", list(SKELETONS.values()) + [H36M17_LEARNABLE_TRIANGULATION])
def test_flip_permutation_swaps_left_and_right_names(skeleton):
    names = skeleton.joint_names
    for j, k in enumerate(skeleton.flip_permutation):
        a, b = names[j], names[k]
        if a.startswith("l_"):
            assert b == "r_" + a[2:]
        elif a.startswith("r_"):
            assert b == "l_" + a[2:]
        else:
            assert a == b
    flip = skeleton.flip_permutation
    assert sorted(flip) == list(range(skeleton.num_joints)) and all(flip[flip[j]] == j for j in flip)


@pytest.mark.parametrize("skeleton", list(SKELETONS.values()) + [H36M17_LEARNABLE_TRIANGULATION])
def test_every_layout_is_one_tree_whose_bones_keep_their_side(skeleton):
    assert len(skeleton.bones) == skeleton.num_joints - 1 and skeleton.parents[skeleton.root] == -1
    adjacency = skeleton.adjacency()
    reach = np.linalg.matrix_power(adjacency.astype(int), skeleton.num_joints) > 0
    assert reach.all() and (adjacency == adjacency.T).all()                       # connected, undirected
    for parent, child in skeleton.bones:   # a left joint's parent is left or central, never right
        assert not {skeleton.side(parent), skeleton.side(child)} >= {"left", "right"}


def test_layout_facts():
    assert (H36M17.num_joints, H36M17.root, H36M17.side(4), H36M17.side(14), H36M17.side(7)) == \
        (17, 0, "left", "right", "center")
    assert MPI_INF_3DHP17.root == MPI_INF_3DHP17.index("pelvis") == 14
    assert PANOPTIC19.root == PANOPTIC19.index("body_centre") == 2 and PANOPTIC19.num_joints == 19
    assert HAND21.root == 0 and HAND21.left_joints == () and HAND21.flip_permutation == tuple(range(21))
    assert [HAND21.joint_names[HAND21.parents[HAND21.index(f"index_{p}")]] for p in ("tip", "dip", "pip", "mcp")] \
        == ["index_dip", "index_pip", "index_mcp", "wrist"]


def test_joint_map_matches_the_same_points_by_common_name():
    to_3dhp = joint_map(H36M17, MPI_INF_3DHP17)
    assert [H36M17.joint_names[j] for j in to_3dhp[[0, 1, 16]]] == ["head", "thorax", "neck"]  # head top, neck, head
    back = joint_map(MPI_INF_3DHP17, H36M17)
    assert (to_3dhp[back] == np.arange(17)).all()
    assert (joint_map(H36M17, H36M17) == np.arange(17)).all()
    with pytest.raises(SkeletonError, match="has no joint for nose, l_eye, l_ear, r_eye, r_ear of 'panoptic19'"):
        joint_map(H36M17, PANOPTIC19)


def test_the_config_names_the_skeleton_and_bad_names_fail_clearly():
    assert skeleton_of(load_config(None, [])) is H36M17
    assert skeleton_of(load_config(None, ["DATASETS.SKELETON", "hand21"])) is HAND21
    with pytest.raises(SkeletonError, match="DATASETS.SKELETON: unknown skeleton 'coco'; expected one of h36m17"):
        skeleton_of(load_config(None, ["DATASETS.SKELETON", "coco"]))
    assert get_skeleton("panoptic19") is PANOPTIC19
    with pytest.raises(SkeletonError, match="has no joint 'nose'"):
        H36M17.index("nose")


@pytest.mark.parametrize("names, parents, message", [
    (("a", "b"), (-1, -1), "one root"),
    (("a", "b", "c"), (-1, 2, 1), "cycle"),
    (("a", "l_b"), (-1, 0), "without their other side: l_b"),
    (("a", "a"), (-1, 0), "unique"),
    (("a", "b"), (-1, 5), "one root"),
])
def test_malformed_skeletons_are_refused(names, parents, message):
    with pytest.raises(SkeletonError, match=message):
        Skeleton("bad", names, parents)
