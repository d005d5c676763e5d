"""MPI-INF-3DHP 2D keypoint sequences (``DATASETS.NAME mpi_inf_3dhp``), for the lifting heads; the files and their
keys are described in ``datasets.formats.mpi_inf_3dhp``.

Files under ``DATASETS.MPI_INF_3DHP.ROOT``: ``TRAIN_FILE`` (P-STMO's ``data_train_3dhp.npz``: training subjects
S1-S8, each with Seq1 and Seq2 seen by cameras 0, 1, 2, 4-8) and ``TEST_SET``, either P-STMO's
``data_test_3dhp.npz`` or the official test set's folder (``mpi_inf_3dhp_test_set``, holding ``TS<i>/annot_data.mat``).
Subjects named ``TS<i>`` are read from ``TEST_SET``, the others from ``TRAIN_FILE`` (so held-out training subjects can
be tested with all their views).

- A test sequence is one take of one camera (``datasets.formats.mpi_inf_3dhp.sequence_camera``), its 3D put into the
  studio frame of the camera's calibration. Its 3D targets are ``univ_annot3`` (the protocol's universal skeleton)
  or, with ``UNIVERSAL_3D False`` (official test set only), the metric ``annot3``. Frames that ``valid_frame`` leaves
  out of the protocol keep their 2D (as window context) but get NaN 3D: no truth, left out of every metric.
- A training sequence: without ``CALIBRATION_ROOT``, each camera of each take is a sequence of its own (a single
  view whose world is its camera frame); with ``CALIBRATION_ROOT`` (the official training set's folder, holding
  ``S<s>/Seq<q>/camera.calibration``), the take's ``CAMERAS`` form one multi-view sequence, its world 3D the mean of
  the views' 3D put into the calibration's world frame; views that disagree there by more than
  ``WORLD_AGREEMENT_MM`` (median over frames) mean the calibration is not that of the take, and are refused.

The input 2D is the file's (ground-truth annot2 projections, as P-STMO trains and tests), confidence 1, visibility 1;
``keypoints_2d_gt`` projects the 3D target through the camera (for the universal skeleton it differs from the input
2D by the skeleton's rescaling). Joints stay in the 3DHP order (``core.skeleton.MPI_INF_3DHP17``); samples, windows,
view grouping and flips come from ``datasets.sequences.SequenceSamples``.
"""
import logging
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from core.geometry.cameras import Cameras
from core.metrics_3dhp import mpi_inf_3dhp_metrics
from core.missing_joints import present_joints
from core.natural_sort import natural_key
from core.registry import DATASETS
from core.skeleton import MPI_INF_3DHP17, skeleton_of
from datasets import DatasetError, stride_of_split, subjects_of_split, views_of_split
from datasets.formats.mpi_inf_3dhp import (MPIINF3DHPError, Take, read_camera_calibration, read_processed_test,
                                           read_processed_train, read_test_annotations, sequence_camera, train_cameras)
from datasets.sequences import KeypointSequence, SequenceSamples, check_sequence

logger = logging.getLogger("epipose")

WORLD_AGREEMENT_MM = 50.0


def make_sequence(name: str, subject: str, action: str, world: np.ndarray, cameras: Cameras, keypoints_2d: np.ndarray,
                  source: str) -> KeypointSequence:
    """A checked sequence of world 3D (T, J, 3) mm seen by ``cameras`` (V,) as ``keypoints_2d`` (T, V, J, 2)."""
    points = torch.from_numpy(world).to(cameras.dtype)
    projected = cameras.project(points.flatten(0, 1).expand(len(cameras), -1, -1))          # V, T J, 2
    projected = projected.reshape(len(cameras), *world.shape[:2], 2)
    seq = KeypointSequence(name=name, subject=subject, action=action, keypoints_3d=world.astype(np.float32),
                           cameras=cameras, keypoints_2d=keypoints_2d.astype(np.float32),
                           keypoints_2d_gt=projected.transpose(0, 1).float().numpy(),
                           confidence_2d=np.ones(keypoints_2d.shape[:3], np.float32),
                           visibility=np.ones(keypoints_2d.shape[:3], bool))
    check_sequence(seq, source, MPI_INF_3DHP17)
    return seq


def _world(points_cam: np.ndarray, cameras: Cameras) -> np.ndarray:
    """(V, T, J, 3) camera-frame mm -> world mm through ``cameras`` (V,)."""
    points = torch.from_numpy(np.ascontiguousarray(points_cam)).to(cameras.dtype)
    return cameras.unsqueeze(1).camera_to_world(points).numpy()


def load_test_sequences(path: Path, sequences: Sequence[str], universal: bool) -> List[KeypointSequence]:
    """The test sequences ``sequences`` of P-STMO's test archive (a file) or the official test set (a folder)."""
    try:
        if path.is_dir():
            annotations = {s: read_test_annotations(path / s / "annot_data.mat") for s in sequences}
            takes = {s: Take(a.keypoints_2d, a.keypoints_3d_univ if universal else a.keypoints_3d, a.valid)
                     for s, a in annotations.items()}
        else:
            if not universal:
                raise DatasetError(f"{path}: P-STMO's test archive holds univ_annot3 only; DATASETS.MPI_INF_3DHP."
                                   "UNIVERSAL_3D False needs the official test set's folder as TEST_SET")
            takes = read_processed_test(path)
    except MPIINF3DHPError as err:
        raise DatasetError(str(err)) from None
    missing = [s for s in sequences if s not in takes]
    if missing:
        raise DatasetError(f"{path}: no test sequence(s) {', '.join(missing)}; it has {', '.join(sorted(takes))}")
    result = []
    for name in sequences:
        take, camera = takes[name], sequence_camera(name)
        world = _world(take.keypoints_3d[None], camera)[0]
        world[~take.valid] = np.nan                                             # frames the protocol does not score
        logger.info("%s %s: %d of %d frames have valid_frame 0 (not scored by the 3DHP protocol): their 3D is NaN",
                    path, name, int((~take.valid).sum()), len(take.valid))
        result.append(make_sequence(name, name, name, world, camera, take.keypoints_2d[:, None], str(path)))
    return result


def load_train_sequences(path: Path, subjects: Sequence[str], cameras: Sequence[str], calibration_root: str) \
        -> List[KeypointSequence]:
    """The takes of ``subjects`` in P-STMO's training archive: one sequence per camera, or per take with
    ``calibration_root`` (see the module docstring)."""
    try:
        takes = read_processed_train(path)
    except MPIINF3DHPError as err:
        raise DatasetError(str(err)) from None
    missing = sorted(set(subjects) - {s for s, _ in takes})
    if missing:
        raise DatasetError(f"{path}: no subject(s) {', '.join(missing)}; the file has "
                           f"{', '.join(sorted({s for s, _ in takes}, key=natural_key))}")
    result = []
    for (subject, action), views in sorted(takes.items(), key=lambda item: natural_key(" ".join(item[0]))):
        if subject not in subjects:
            continue
        names, where = list(cameras) or sorted(views, key=natural_key), f"{path} data['{subject} {action}']"
        lacking = [n for n in names if n not in views]
        lengths = {len(views[n].keypoints_3d) for n in names if n in views}
        if lacking or len(lengths) > 1:
            raise DatasetError(f"{where}: " + (f"no camera(s) {', '.join(lacking)}; it has {', '.join(views)}"
                                               if lacking else f"the cameras have different lengths {sorted(lengths)}"))
        if not calibration_root:
            try:
                own = {n: train_cameras([n]) for n in names}
            except MPIINF3DHPError as err:
                raise DatasetError(f"{where}: {err}") from None
            result += [make_sequence(f"{subject}/{action}/cam{n}", subject, action, views[n].keypoints_3d, own[n],
                                     views[n].keypoints_2d[:, None], where) for n in names]
            continue
        calibration = Path(calibration_root) / subject / action / "camera.calibration"
        try:
            rig, _ = read_camera_calibration(calibration, names)
        except MPIINF3DHPError as err:
            raise DatasetError(f"DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT: {err}") from None
        world = _world(np.stack([views[n].keypoints_3d for n in names]), rig)            # V, T, J, 3
        mean = np.nanmean(world, axis=0)
        disagreement = np.nanmedian(np.nanmean(np.linalg.norm(world - mean, axis=-1), axis=(0, 2)))
        if disagreement > WORLD_AGREEMENT_MM:
            raise DatasetError(f"{calibration}: the views of {where} put into its world frame disagree by "
                               f"{disagreement:.0f} mm (median), more than {WORLD_AGREEMENT_MM:.0f} mm: not the "
                               "calibration of this take")
        result.append(make_sequence(f"{subject}/{action}", subject, action, mean, rig,
                                    np.stack([views[n].keypoints_2d for n in names], axis=1), where))
    return result


def load_3dhp_sequences(root, subjects: Sequence[str], train_file: str, test_set: str, cameras: Sequence[str] = (),
                        calibration_root: str = "", universal: bool = True) -> List[KeypointSequence]:
    """The sequences of ``subjects`` (test sequences TS<i> and training subjects S<s>; see the module docstring)."""
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise DatasetError(f"DATASETS.MPI_INF_3DHP.ROOT '{root}' is not a folder (it holds TRAIN_FILE and TEST_SET)")
    tests = [s for s in subjects if s.startswith("TS")]
    trains = [s for s in subjects if s not in tests]
    sequences = load_train_sequences(root / train_file, trains, cameras, calibration_root) if trains else []
    return sequences + (load_test_sequences(root / test_set, tests, universal) if tests else [])


class MPIINF3DHPSamples(SequenceSamples):
    """The samples of ``SequenceSamples``, scored by MPI-INF-3DHP's protocol too (PCK / AUC on the joints of
    ``pck_joint_set``, DATASETS.MPI_INF_3DHP.PCK_JOINTS)."""

    pck_joint_set = "pstmo"

    def protocol_metrics(self, predictions) -> dict:
        """``core.metrics_3dhp.mpi_inf_3dhp_metrics`` of the test's ``predictions`` (PCK, AUC and MPJPE per test
        sequence, each sample's subject, and per scene), for metrics.json."""
        pred, target = (torch.from_numpy(predictions[k]).double() for k in ("pred_3d", "target_3d"))
        return {"mpi_inf_3dhp": mpi_inf_3dhp_metrics(pred, target, list(predictions["subject"]), self.skeleton,
                                                     joint_mask=present_joints(target), joint_set=self.pck_joint_set)}


@DATASETS.register("mpi_inf_3dhp")
def build_mpi_inf_3dhp(cfg, split: str) -> MPIINF3DHPSamples:
    d, m = cfg.DATASETS, cfg.DATASETS.MPI_INF_3DHP
    if d.MODE != "keypoints":
        raise DatasetError("DATASETS.NAME 'mpi_inf_3dhp' holds 2D keypoints only: set DATASETS.MODE keypoints")
    subjects = subjects_of_split(cfg, split, m.TRAIN_SUBJECTS, m.TEST_SUBJECTS, "DATASETS.MPI_INF_3DHP")
    sequences = load_3dhp_sequences(m.ROOT, list(subjects), m.TRAIN_FILE, m.TEST_SET, [str(c) for c in m.CAMERAS],
                                    m.CALIBRATION_ROOT, m.UNIVERSAL_3D)
    samples = MPIINF3DHPSamples(sequences, skeleton_of(cfg), layout=MPI_INF_3DHP17, views=views_of_split(cfg, split),
                                frames=d.FRAMES, stride=stride_of_split(cfg, split), flip=d.FLIP and split == "train")
    samples.pck_joint_set = m.PCK_JOINTS
    return samples
