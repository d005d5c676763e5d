from core.skeleton import BONES, FLIP_PERMUTATION, JOINT_NAMES, LEFT_JOINTS, PARENTS, RIGHT_JOINTS, bone_side


def test_flip_permutation_swaps_left_and_right_names():
    for j, k in enumerate(FLIP_PERMUTATION):
        a, b = JOINT_NAMES[j], JOINT_NAMES[k]
        if a.startswith("l_"):
            assert b == "r_" + a[2:]
        elif a.startswith("r_"):
            assert b == "l_" + a[2:]
        else:
            assert a == b
    assert sorted(FLIP_PERMUTATION) == list(range(17))
    assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[j]] == j for j in range(17))


def test_tree_and_sides():
    assert len(BONES) == 16 and PARENTS[0] == -1 and all(p < c for p, c in BONES)
    assert all(JOINT_NAMES[j].startswith("l_") for j in LEFT_JOINTS)
    assert all(JOINT_NAMES[j].startswith("r_") for j in RIGHT_JOINTS)
    assert bone_side(0, 4) == "left" and bone_side(8, 14) == "right" and bone_side(0, 7) == "center"
