"""Human3.6M 2D keypoint sequences in the VideoPose3D format (``DATASETS.NAME h36m``), for the lifting heads.

Files under ``DATASETS.H36M.ROOT``:

- ``data_3d_h36m.npz`` (world 3D, metres, 32 or 17 joints; read by ``datasets.formats.videopose3d``);
- ``data_2d_h36m_<KEYPOINTS>.npz``: the 2D of the four cameras (``gt``, ``cpn_ft_h36m_dbb`` or any other
  suffix), trimmed to the 3D length;
- the cameras: a JSON file in the format of ``human36m-camera-parameters`` (``DATASETS.H36M.CAMERAS``;
  "" = ``<ROOT>/camera-parameters.json``), in VideoPose3D's camera order (54138969, 55011271, 58860488,
  60457274), so the i-th 2D array belongs to the i-th camera.

Each take (subject and action name, e.g. "S9" / "Walking 1") becomes one ``KeypointSequence`` of 4
views: the file's 2D as the input, the projections of the 3D through the calibration as
``keypoints_2d_gt``, the file's scores as ``confidence_2d`` (a third channel, x, y, score, as detectors export
it; 1 without one) and visibility 1. The cameras are checked against the size of the subject's 3D: translations
in metres where millimetres are expected (a rig 1000 times too small) are refused. ``ACTIONS`` selects action
groups by the name before the take number ([] = all 15), and ``SKIP_TAKES`` leaves out takes named
"subject/action" exactly as in the files (for instance the S9 takes with damaged ground truth, whose
VideoPose3D names depend on how the videos were numbered). Samples, windows, single- or multi-view
grouping and flip augmentation come from ``datasets.sequences.SequenceSamples``.
"""
from pathlib import Path
from typing import List

import numpy as np
import torch

from core.metrics import action_group
from core.registry import DATASETS
from core.skeleton import H36M17, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.formats.calibration import CalibrationError, PERSON_SIZE_MM, read_h36m_cameras
from datasets.formats.videopose3d import CAMERA_IDS, VideoPose3DError, match_2d_to_3d, read_positions_2d, \
    read_positions_3d
from datasets.sequences import KeypointSequence, SequenceSamples, check_sequence


def load_h36m_sequences(root, keypoints: str, subjects, actions=(), skip_takes=(), cameras_file="") \
        -> List[KeypointSequence]:
    """The selected takes as ``KeypointSequence`` objects (see the module docstring)."""
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise DatasetError(f"DATASETS.H36M.ROOT '{root}' is not a folder (it holds data_3d_h36m.npz and "
                           "data_2d_h36m_<KEYPOINTS>.npz in the VideoPose3D format)")
    cameras_path = Path(cameras_file) if cameras_file else root / "camera-parameters.json"
    path_3d, path_2d = root / "data_3d_h36m.npz", root / f"data_2d_h36m_{keypoints}.npz"
    try:
        positions_3d = read_positions_3d(path_3d)
        missing = sorted(set(subjects) - set(positions_3d))
        if missing:
            raise DatasetError(f"{path_3d}: no subject(s) {', '.join(missing)}; the file has "
                               f"{', '.join(sorted(positions_3d))}")
        selected = {s: {a: p for a, p in positions_3d[s].items()
                        if (not actions or action_group(a) in actions) and f"{s}/{a}" not in skip_takes}
                    for s in subjects}
        positions_2d = match_2d_to_3d(read_positions_2d(path_2d)[0], selected, str(path_2d))
    except VideoPose3DError as err:
        raise DatasetError(str(err)) from None
    sequences = []
    for subject in subjects:
        try:
            cameras, _ = read_h36m_cameras(cameras_path, subject, CAMERA_IDS, person_size_mm(selected[subject]))
        except CalibrationError as err:
            raise DatasetError(f"DATASETS.H36M.CAMERAS: {err}") from None
        for action, points in selected[subject].items():
            world = torch.from_numpy(points).to(cameras.dtype)                    # T, J, 3
            projected = cameras.project(world.unsqueeze(0).expand(len(cameras), -1, -1, -1)
                                        .flatten(1, 2)).reshape(len(cameras), *points.shape[:2], 2)
            scored_2d = np.stack(positions_2d[subject][action], axis=1)           # T, V, J, 3: x, y, score
            seq = KeypointSequence(name=f"{subject}/{action}", subject=subject, action=action, keypoints_3d=points,
                                   cameras=cameras, keypoints_2d=scored_2d[..., :2].copy(),
                                   keypoints_2d_gt=projected.transpose(0, 1).float().numpy(),
                                   confidence_2d=scored_2d[..., 2].copy(),
                                   visibility=np.ones(scored_2d.shape[:3], bool))
            check_sequence(seq, str(path_2d), H36M17)
            sequences.append(seq)
    if not sequences:
        raise DatasetError(f"{path_3d}: no takes left for subjects {list(subjects)} with DATASETS.H36M.ACTIONS "
                           f"{list(actions)} and SKIP_TAKES {list(skip_takes)}")
    return sequences


def person_size_mm(takes) -> float:
    """The size of the person in ``takes`` ({action: (T, J, 3) mm}): the median over frames of the largest extent
    of its joints along a world axis (its height, standing); ``PERSON_SIZE_MM`` without finite 3D."""
    if not takes:
        return PERSON_SIZE_MM
    points = np.concatenate(list(takes.values()))                                   # frames, J, 3
    extents = np.fmax.reduce(np.fmax.reduce(points, axis=1) - np.fmin.reduce(points, axis=1), axis=-1)  # NaN-blind
    finite = extents[np.isfinite(extents)]
    return float(np.median(finite)) if finite.size else PERSON_SIZE_MM


@DATASETS.register("h36m")
def build_h36m(cfg, split: str) -> SequenceSamples:
    d, h = cfg.DATASETS, cfg.DATASETS.H36M
    if d.MODE != "keypoints":
        raise DatasetError("DATASETS.NAME 'h36m' holds 2D keypoints only: set DATASETS.MODE keypoints (images are "
                           "read by h36m_toolbox or h36m_learnable_triangulation)")
    subjects = subjects_of_split(cfg, split, h.TRAIN_SUBJECTS, h.TEST_SUBJECTS, "DATASETS.H36M")
    sequences = load_h36m_sequences(h.ROOT, h.KEYPOINTS, list(subjects), list(h.ACTIONS), list(h.SKIP_TAKES),
                                    h.CAMERAS)
    return SequenceSamples(sequences, skeleton_of(cfg), layout=H36M17, views=views_of_split(cfg, split), frames=d.FRAMES,
                           stride=stride_of_split(cfg, split),
                           flip=d.FLIP and split == "train")
