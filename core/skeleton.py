"""Skeletons as data: the joint names, the kinematic tree and the left/right pairs of each joint layout EpiPose reads.

A ``Skeleton`` is chosen by ``DATASETS.SKELETON`` (``skeleton_of(cfg)``); every model, metric, flip and picture takes
its joint count, root, bones and left/right swap from it, and no code outside this module writes a joint index.
Left and right are read from the names (``l_<part>`` pairs with ``r_<part>``), so a layout's swap cannot disagree
with its names.

Layouts (the order of each dataset's own files; readers keep it):

- ``h36m17``: the 17 Human3.6M joints of VideoPose3D / Epipolar Transformers / learnable triangulation, pelvis
  first. ``head`` is the top of the head, ``neck`` the point between neck and nose (H36M's "Neck/Nose"). Ski-Pose's
  ``labels.h5`` are in this order too, their points made from the markers of Spörri's skiers (in Rhodin's mapping,
  ``spine`` and ``thorax`` lie between the hips and the head marker, ``neck`` and ``head`` are the head marker).
- ``mpi_inf_3dhp17``: the 17 test joints of MPI-INF-3DHP (``univ_annot3`` of the test set's ``annot_data.mat``, and
  the processed files of PoseFormer / P-STMO / ESMformer), in 3DHP's order: head top, neck, right arm, left arm,
  right leg, left leg, pelvis (the root, index 14), spine, head. 3DHP's ``head`` is the centre of the head (H36M's
  ``neck``); its ``neck`` is the base of the neck (H36M's ``thorax``).
- ``panoptic19``: CMU Panoptic's ``hdPose3d_stage1_coco19`` order (neck, nose, body centre = the root, left arm,
  left leg, right arm, right leg, eyes and ears: the Panoptic toolbox's README), with the toolbox's 14 body bones
  (``body_edges`` of its python demos) and COCO's nose-eye-ear bones, which the toolbox does not draw.
- ``hand21``: one hand of the Rendered Hand Pose dataset (RHD): the wrist (the root), then thumb, index, middle,
  ring and little finger, each from the tip to the knuckle (RHD's order; its left hand is 0-20, its right 21-41).
"""
from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np


class SkeletonError(ValueError):
    """A skeleton that is unknown or malformed (names the skeleton and what was expected)."""


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: Tuple[str, ...]
    parents: Tuple[int, ...]          # the parent of each joint in the kinematic tree, -1 for the root
    # joint name -> the name of the same point in the common vocabulary (h36m17's names) where they differ
    aliases: Dict[str, str] = field(default_factory=dict, hash=False)
    num_joints: int = field(init=False)
    root: int = field(init=False)
    bones: Tuple[Tuple[int, int], ...] = field(init=False)            # (parent, child) pairs, in joint order
    left_joints: Tuple[int, ...] = field(init=False)                  # l_<part>, in joint order
    right_joints: Tuple[int, ...] = field(init=False)                 # the r_<part> of each of left_joints
    flip_permutation: Tuple[int, ...] = field(init=False)             # x_flipped = x[..., flip_permutation, :]

    def __post_init__(self):
        names, parents, where = self.joint_names, self.parents, f"skeleton '{self.name}'"
        if len(set(names)) != len(names) or len(parents) != len(names):
            raise SkeletonError(f"{where}: joint names must be unique and one parent per joint")
        roots = [j for j, p in enumerate(parents) if p == -1]
        if len(roots) != 1 or any(not -1 <= p < len(names) or p == j for j, p in enumerate(parents)):
            raise SkeletonError(f"{where}: parents must name one root (-1) and a joint index for every other joint")
        for joint in range(len(names)):                        # every joint reaches the root without a cycle
            seen, j = set(), joint
            while j != -1:
                if j in seen:
                    raise SkeletonError(f"{where}: the parents form a cycle through '{names[j]}'")
                seen.add(j)
                j = parents[j]
        left = tuple(j for j, n in enumerate(names) if n.startswith("l_"))
        unpaired = [names[j] for j in left if "r_" + names[j][2:] not in names] + \
                   [n for n in names if n.startswith("r_") and "l_" + n[2:] not in names]
        if unpaired:
            raise SkeletonError(f"{where}: joints without their other side: {', '.join(unpaired)}")
        right = tuple(names.index("r_" + names[j][2:]) for j in left)
        swap = dict(zip(left, right)) | dict(zip(right, left))
        object.__setattr__(self, "num_joints", len(names))
        object.__setattr__(self, "root", roots[0])
        object.__setattr__(self, "bones", tuple((p, c) for c, p in enumerate(parents) if p >= 0))
        object.__setattr__(self, "left_joints", left)
        object.__setattr__(self, "right_joints", right)
        object.__setattr__(self, "flip_permutation", tuple(swap.get(j, j) for j in range(len(names))))

    def index(self, name: str) -> int:
        """The index of the joint ``name``; a SkeletonError lists the joints if there is none."""
        if name not in self.joint_names:
            raise SkeletonError(f"skeleton '{self.name}' has no joint '{name}'; its joints: "
                                f"{', '.join(self.joint_names)}")
        return self.joint_names.index(name)

    def common_names(self) -> Tuple[str, ...]:
        """Each joint's name in the common vocabulary (``aliases`` applied), by which layouts are matched."""
        return tuple(self.aliases.get(n, n) for n in self.joint_names)

    def non_root_joints(self) -> Tuple[int, ...]:
        """The joint indices other than the root, in order (what root-relative models predict)."""
        return tuple(j for j in range(self.num_joints) if j != self.root)

    def side(self, joint: int) -> str:
        """'left', 'right' or 'center' for a joint (a bone is drawn in the colour of its child joint)."""
        return "left" if joint in self.left_joints else "right" if joint in self.right_joints else "center"

    def adjacency(self) -> np.ndarray:
        """(J, J) boolean adjacency of the bones, symmetric, with self loops (the graph of the graph lifters)."""
        adjacency = np.eye(self.num_joints, dtype=bool)
        if self.bones:
            parents, children = np.array(self.bones).T
            adjacency[parents, children] = adjacency[children, parents] = True
        return adjacency


def _hand_parents() -> Tuple[int, ...]:
    """Wrist 0; finger f's joints 1 + 4f (tip) .. 4 + 4f (knuckle), each the child of the next, the knuckle of the
    wrist."""
    return (-1,) + tuple(0 if k == 3 else 2 + 4 * f + k for f in range(5) for k in range(4))


H36M17 = Skeleton(
    "h36m17",
    ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "neck", "head",
     "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15))

MPI_INF_3DHP17 = Skeleton(
    "mpi_inf_3dhp17",
    ("head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip", "r_knee",
     "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head"),
    (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    {"head_top": "head", "head": "neck", "neck": "thorax"})

PANOPTIC19 = Skeleton(
    "panoptic19",
    ("neck", "nose", "body_centre", "l_shoulder", "l_elbow", "l_wrist", "l_hip", "l_knee", "l_ankle", "r_shoulder",
     "r_elbow", "r_wrist", "r_hip", "r_knee", "r_ankle", "l_eye", "l_ear", "r_eye", "r_ear"),
    (2, 0, -1, 0, 3, 4, 2, 6, 7, 0, 9, 10, 2, 12, 13, 1, 15, 1, 17),
    {"body_centre": "pelvis", "neck": "thorax"})

HAND21 = Skeleton(
    "hand21",
    ("wrist",) + tuple(f"{finger}_{part}" for finger in ("thumb", "index", "middle", "ring", "little")
                       for part in ("tip", "dip", "pip", "mcp")),
    _hand_parents())

SKELETONS: Dict[str, Skeleton] = {s.name: s for s in (H36M17, MPI_INF_3DHP17, PANOPTIC19, HAND21)}

# File layouts that readers convert from (``joint_map``), not offered by DATASETS.SKELETON.
# learnable triangulation's Human3.6M annotation (its ``human36m-multiview-labels``): h36m17's joints, feet first.
H36M17_LEARNABLE_TRIANGULATION = Skeleton(
    "h36m17_learnable_triangulation",
    ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "thorax", "head", "r_wrist",
     "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck"),
    (1, 2, 6, 6, 3, 4, -1, 6, 7, 16, 11, 12, 8, 8, 13, 14, 8))


def get_skeleton(name: str) -> Skeleton:
    """The skeleton registered as ``name``; a SkeletonError lists the known ones."""
    if name not in SKELETONS:
        raise SkeletonError(f"unknown skeleton '{name}'; expected one of {', '.join(SKELETONS)}")
    return SKELETONS[name]


def joint_map(source: Skeleton, target: Skeleton) -> np.ndarray:
    """(target J,) for each joint of ``target`` the index of the same point in ``source`` (matched by common name),
    so that ``x_target = x_source[..., joint_map(source, target), :]``; a SkeletonError names the joints of ``target``
    that ``source`` lacks."""
    names = source.common_names()
    missing = [n for n, c in zip(target.joint_names, target.common_names()) if c not in names]
    if missing:
        raise SkeletonError(f"skeleton '{source.name}' has no joint for {', '.join(missing)} of '{target.name}'")
    return np.array([names.index(c) for c in target.common_names()])


def skeleton_of(cfg) -> Skeleton:
    """The skeleton of ``DATASETS.SKELETON``."""
    try:
        return get_skeleton(cfg.DATASETS.SKELETON)
    except SkeletonError as err:
        raise SkeletonError(f"DATASETS.SKELETON: {err}") from None

