"""The test protocol of MPI-INF-3DHP (Mehta et al., 3DV 2017; the test set's evaluation code,
test_util/mpii_test_predictions.m, mpii_evaluate_errors.m and mpii_compute_3d_pck.m): per-joint distances of the
root-relative poses (the target's univ_annot3 minus its pelvis); 3D PCK = % of joint errors strictly below 150 mm (an
error of exactly 150 mm is a miss, as the reference's ``error < pck_thresh``), AUC = the mean PCK over the 31
thresholds 0, 5, ..., 150 mm (also strict, so a perfect pose scores 30/31 of 100 %); MPJPE over all 17 joints (the
root's error is 0). Sequence averages pool the frames, so a scene's figure is the frame-weighted mean of its sequences'
(the test set's README: (TS1 x 603 + TS2 x 540) / (603 + 540)).

The PCK / AUC joints (``joint_set``): "pstmo" (the default) are the 14 of head top, neck, shoulders, elbows, wrists,
hips, knees and ankles, the groups left in the copy of mpii_get_pck_auc_joint_groups.m that P-STMO's and
PoseFormerV2's 3DHP code evaluates with (its head-centre, spine and pelvis entries commented out; the code EpiPose's
3DHP archives come from); "official" is all 17 joints, as the test set releases that file (head top + head centre,
neck, shoulders, elbows, wrists, spine, hips + pelvis, knees, ankles), which scores higher (the root-relative pelvis
is always correct). Papers rarely say which of the two they used.

Input checks, NaN policy and JSON conventions are those of ``core.metrics``, whose helpers this module uses; it
lives apart only to keep that file short."""
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

from core.metrics import _check_names, _means_or_none, _prepare, root_relative
from core.skeleton import Skeleton

PCK_3DHP_THRESHOLD_MM = 150.0
AUC_3DHP_THRESHOLDS_MM = tuple(float(t) for t in range(0, 151, 5))
# the PCK / AUC joints by common name (core.skeleton: h36m17's vocabulary; 3DHP's head top is "head", its neck
# "thorax")
PCK_3DHP_JOINTS = ("head", "thorax", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
                   "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle")
# the joint sets of the module docstring; "official" adds 3DHP's head centre (h36m17's "neck"), spine and pelvis
PCK_3DHP_JOINT_SETS = {"pstmo": PCK_3DHP_JOINTS, "official": PCK_3DHP_JOINTS + ("neck", "spine", "pelvis")}
MPI_INF_3DHP_SCENES = {"green_screen": ("TS1", "TS2"), "no_green_screen": ("TS3", "TS4"), "outdoor": ("TS5", "TS6")}


def pck_3dhp_joints(skeleton: Skeleton, joint_set: str = "pstmo") -> List[int]:
    """The indices in ``skeleton`` of the joints that 3DHP's PCK and AUC count (``PCK_3DHP_JOINT_SETS[joint_set]``),
    matched by common name."""
    if joint_set not in PCK_3DHP_JOINT_SETS:
        raise ValueError(f"unknown 3DHP PCK joint set '{joint_set}'; expected one of {', '.join(PCK_3DHP_JOINT_SETS)}")
    names = skeleton.common_names()
    missing = [n for n in PCK_3DHP_JOINT_SETS[joint_set] if n not in names]
    if missing:
        raise ValueError(f"skeleton '{skeleton.name}' lacks the 3DHP PCK joints {', '.join(missing)}")
    return [names.index(n) for n in PCK_3DHP_JOINT_SETS[joint_set]]


def _3dhp_figures(hits: Tensor, counted: Tensor, total: Tensor, count: Tensor, frames: Tensor) -> Dict:
    """JSON figures from pooled counts: hits (T,) per AUC threshold, counted PCK joints, the summed and counted MPJPE
    joint errors and the frames."""
    at_pck = AUC_3DHP_THRESHOLDS_MM.index(PCK_3DHP_THRESHOLD_MM)
    rate = (100.0 * hits / counted.clamp_min(1)).tolist()
    return {"pck": rate[at_pck] if counted > 0 else None, "auc": sum(rate) / len(rate) if counted > 0 else None,
            "mpjpe_mm": _means_or_none(total[None], count[None])[0], "num_frames": int(frames)}


def mpi_inf_3dhp_metrics(pred_3d, target_3d, sequences: Sequence[str], skeleton: Skeleton, joint_mask=None,
                         joint_set: str = "pstmo") -> Dict:
    """The MPI-INF-3DHP protocol (see above) of N poses (N, J, 3) mm in the joints of ``skeleton``, each from the
    test sequence ``sequences[i]`` ("TS1".."TS6"; other names count in "all" and their own sequence only).

    Returns ``all``, ``per_sequence`` and ``per_scene`` (green_screen TS1-2, no_green_screen TS3-4, outdoor TS5-6,
    the scenes present), each {pck, auc (%), mpjpe_mm, num_frames}, and the thresholds, PCK joint set and joints used.
    ``joint_mask`` (N, J) or (J,): True where the target joint exists (a frame without ground truth is all False);
    masked joints, and every joint of a pose whose target root is masked, are left out. A NaN predicted joint is a
    miss for PCK and AUC and is left out of the MPJPE (as ``core.metrics.pck`` and its averages do)."""
    pred, target, mask = _prepare(pred_3d, target_3d, joint_mask, "mpi_inf_3dhp_metrics", 3)
    if pred.dim() != 3 or pred.shape[1] != skeleton.num_joints:
        raise ValueError(f"mpi_inf_3dhp_metrics: poses must have shape (N, {skeleton.num_joints}, 3) in the joint "
                         f"order of skeleton '{skeleton.name}', got {tuple(pred.shape)}")
    names, group = np.unique(_check_names(sequences, pred.shape[0], "sequences"), return_inverse=True)
    group = torch.as_tensor(group.reshape(-1), device=pred.device)
    root = skeleton.root
    counted = mask & mask[:, root:root + 1]
    errors = torch.linalg.vector_norm(root_relative(pred, root) - root_relative(target, root), dim=-1)   # N, J
    joints = pck_3dhp_joints(skeleton, joint_set)
    thresholds = torch.tensor(AUC_3DHP_THRESHOLDS_MM, dtype=errors.dtype, device=errors.device)
    hits = (errors[:, joints, None] < thresholds) & counted[:, joints, None]        # N, P, T; NaN is a miss
    finite = counted & torch.isfinite(errors)

    def pooled(values: Tensor) -> Tensor:                                          # (N, ...) -> (groups, ...)
        return torch.zeros((len(names),) + values.shape[1:], dtype=values.dtype,
                           device=values.device).index_add_(0, group, values)

    sums = [pooled(hits.sum(1).to(errors.dtype)), pooled(counted[:, joints].sum(1)),
            pooled(torch.where(finite, errors, 0.0).sum(1)), pooled(finite.sum(1)), pooled(counted.any(1).long())]

    def figures(chosen) -> Dict:
        return _3dhp_figures(*(s[chosen].sum(0) for s in sums))

    scenes = {scene: [i for i, n in enumerate(names) if n in members]
              for scene, members in MPI_INF_3DHP_SCENES.items()}
    return {"pck_threshold_mm": PCK_3DHP_THRESHOLD_MM, "auc_thresholds_mm": list(AUC_3DHP_THRESHOLDS_MM),
            "pck_joint_set": joint_set, "pck_joints": [skeleton.joint_names[j] for j in joints],
            "all": figures(slice(None)),
            "per_sequence": {str(n): figures([i]) for i, n in enumerate(names)},
            "per_scene": {scene: figures(chosen) for scene, chosen in scenes.items() if chosen}}
