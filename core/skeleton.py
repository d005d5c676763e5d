"""The Human3.6M 17-joint skeleton: the one joint order used everywhere inside EpiPose.

Readers convert other layouts to this order at the border (see ``datasets/formats``).
"""

JOINT_NAMES = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "spine", "thorax", "neck", "head",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
ROOT = 0


def non_root_joints(num_joints: int = NUM_JOINTS) -> tuple:
    """The joint indices other than ROOT, in order (what root-relative models predict)."""
    return tuple(j for j in range(num_joints) if j != ROOT)

# Parent of each joint in the kinematic tree (-1 for the root).
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Bones as (parent, child) pairs, in joint order.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)

# Index permutation that swaps left and right joints (used for flip augmentation and
# for detector-like left/right confusions): x_flipped = x[..., FLIP_PERMUTATION, :].
FLIP_PERMUTATION = tuple(
    RIGHT_JOINTS[LEFT_JOINTS.index(j)] if j in LEFT_JOINTS
    else LEFT_JOINTS[RIGHT_JOINTS.index(j)] if j in RIGHT_JOINTS
    else j
    for j in range(NUM_JOINTS)
)


def bone_side(parent: int, child: int) -> str:
    """'left', 'right' or 'center' for a bone, by its child joint (for drawing colours)."""
    if child in LEFT_JOINTS:
        return "left"
    if child in RIGHT_JOINTS:
        return "right"
    return "center"
