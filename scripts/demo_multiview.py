"""Multi-view 3D poses from your own calibrated cameras: 2D keypoints per view -> 3D per frame, reprojection
errors, and an overlay video.

    python scripts/demo_multiview.py --calibration calib.toml \\
        --keypoints cam1_json cam2_json ... --layout body25b --videos cam1.mp4 cam2.mp4 ... --out outs/demo

One keypoint source and (optionally) one video or image folder per camera, in the calibration's camera order
(or the order of ``--cameras``). Calibration: aniposelib / Pose2Sim ``.toml``, Human3.6M ``.json`` (with
``--subject``) or CMU Panoptic ``.json``. Keypoints: OpenPose JSON folders (BODY_25, BODY_25B, COCO-18) or
COCO-style keypoint JSON files, or ``--backbone-run`` (a trained image pipeline of this toolbox, which finds
the 2D in the videos itself, tracking the person from a first whole-image crop). ``--lifter-run`` names a trained single-view lifter whose per-view 3D fills
the joints triangulation misses. ``--truth`` names a known 3D (``truth.npz`` of ``scripts/make_demo_footage.py``)
to score the result against. Writes ``poses_3d.npz``, ``poses_3d.json`` (world mm), ``summary.json`` (median
reprojection errors, bone-length spread; with ``--optimise`` also those before it), with ``--truth``
``truth_error.json`` and, with videos, ``overlay.mp4`` and
``overlay_still.png``. The steps are in ``scripts/multiview_demo_steps.py``.
"""
import argparse
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import ConfigError  # noqa: E402
from core.engine.checkpoint import CheckpointError  # noqa: E402
from core.engine.trained_run import load_image_pipeline, load_trained_run  # noqa: E402
from core.io import write_json_atomic  # noqa: E402
from core.skeleton import H36M17  # noqa: E402
from datasets import DatasetError, build_dataset  # noqa: E402
from datasets.footage import FootageError  # noqa: E402
from modeling.pipelines import LiftingPipeline, PipelineConfigError, ScreenLiftingPipeline  # noqa: E402
from core.video import FrameSource, VideoError  # noqa: E402
from core.vis import write_png  # noqa: E402
from datasets.formats.calibration import CalibrationError  # noqa: E402
from datasets.formats.keypoints2d import LAYOUTS, KeypointFormatError  # noqa: E402
from scripts.multiview_demo_steps import (check_output_folder, lift_views, load_footage, reconstruct,  # noqa: E402
                                         refine_with_lifter, render_overlay, save_reconstruction, summary)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", required=True, help="calibration file (.toml or .json)")
    parser.add_argument("--keypoints", nargs="*", default=[],
                        help="one per camera: an OpenPose JSON folder or a COCO-style keypoint JSON")
    parser.add_argument("--backbone-run", default="", help="instead of --keypoints: output folder of a trained image "
                                                            "pipeline whose network finds the 2D in the videos")
    parser.add_argument("--layout", default="auto", choices=("auto",) + LAYOUTS,
                        help="keypoint layout (auto: by the keypoint count; BODY_25 and BODY_25B must be named)")
    parser.add_argument("--videos", nargs="*", default=[], help="one video or image folder per camera (optional)")
    parser.add_argument("--cameras", nargs="*", default=[], help="camera names to use, in this order (default: all)")
    parser.add_argument("--subject", default="", help="Human3.6M calibration: the subject whose extrinsics to use")
    parser.add_argument("--toml-units", default="m", choices=("m", "cm", "mm"),
                        help="TOML calibration: units of the translations (Pose2Sim: m; anipose: often mm)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--truth", default="", help="known 3D to score against: an npz with 'points_3d_mm' (T, J, 3) "
                                                     "world mm and 'joint_names' (J,), e.g. make_demo_footage.py's")
    parser.add_argument("--min-confidence", type=float, default=0.3, help="ignore 2D keypoints below this")
    parser.add_argument("--inlier-px", type=float, default=20.0, help="RANSAC inlier threshold, pixels")
    parser.add_argument("--smooth", type=float, default=0.0,
                        help="Gaussian temporal smoothing of the 3D, sigma in frames (0 = off)")
    parser.add_argument("--optimise", action="store_true",
                        help="instead of --smooth: refine the RANSAC 3D over the whole recording (robust reprojection "
                             "error of RANSAC's inliers weighted by the confidences, smooth motion, one length per "
                             "bone; fills gaps)")
    parser.add_argument("--optimise-smooth", type=float, default=0.3,
                        help="--optimise: weight of the accelerations, px^2 per (mm / frame^2)^2")
    parser.add_argument("--optimise-bones", type=float, default=0.3,
                        help="--optimise: weight of the bone-length deviations, px^2 per mm^2")
    parser.add_argument("--lifter-run", default="", help="output folder of a trained single-view lifter (e.g. "
                                                          "outs/linear_lifter): fills the joints triangulation misses")
    parser.add_argument("--lifter-blend", type=float, default=0.0,
                        help="with --lifter-run: weight of the lifted pose on triangulated joints (0 = keep them)")
    parser.add_argument("--fps", type=float, default=0.0, help="overlay frame rate (default: the first video's, or 30)")
    parser.add_argument("--view-height", type=int, default=480, help="overlay: pixel height of each view")
    parser.add_argument("--still", type=int, default=-1, help="overlay: frame saved as overlay_still.png "
                                                                "(default: the middle one)")
    return parser.parse_args(argv)


def load_detector(run):
    """A trained image pipeline run: its network (an ``ImagePipeline``), its crop side in pixels and its crop
    scale (crop side / the person's 2D box)."""
    cfg, detector = load_image_pipeline(run)
    d = cfg.DATASETS
    if d.NAME == "synthetic":  # its crops are CROP_SCALE x the person's 2D box, as the demo's
        return detector, d.SYNTHETIC.IMAGE_SIZE, d.SYNTHETIC.CROP_SCALE
    # Human3.6M's annotated boxes are about 1.25 x the joints' extent (its CROP_SCALE scales those boxes)
    return detector, d.H36M_IMAGES.IMAGE_SIZE, 1.25 * d.H36M_IMAGES.CROP_SCALE


def load_lifter(run):
    """A trained single-view lifter run: its pipeline, one of its training cameras (the virtual camera the views'
    2D are re-imaged by) and its window length."""
    cfg, model = load_trained_run(run)
    if not isinstance(model, (LiftingPipeline, ScreenLiftingPipeline)):
        raise ConfigError(f"--lifter-run '{run}' is a {type(model).__name__}; a single-view lifter trained with 3D "
                          "(linear, lcn, semgcn, poseformer) is expected")
    # the training data's camera: from the run's test set (for Human3.6M this needs its data on this machine)
    return model, build_dataset(cfg, "test").sequences[0].cameras[:1], cfg.DATASETS.FRAMES


def load_truth(path, num_frames: int) -> np.ndarray:
    """(T, 17, 3) world mm: the joints of the ``--truth`` archive in the Human3.6M order, NaN for those it lacks."""
    expected = "an npz archive with 'points_3d_mm' (T, J, 3) world mm and 'joint_names' (J,) expected"
    if not Path(path).is_file():
        raise FootageError(f"--truth '{path}' does not exist ({expected})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("points_3d_mm", "joint_names") if key in archive}
    except (OSError, ValueError, AttributeError, EOFError, zipfile.BadZipFile):   # AttributeError: a plain .npy
        raise FootageError(f"--truth '{path}' cannot be read: {expected}") from None
    points, names = arrays.get("points_3d_mm"), arrays.get("joint_names")
    if points is None or names is None or points.ndim != 3 or points.shape[-1] != 3 or \
            names.shape != points.shape[1:2] or points.dtype.kind not in "fiu":
        raise FootageError(f"--truth '{path}': {expected}")
    if len(points) != num_frames:
        raise FootageError(f"--truth '{path}' holds {len(points)} frames, the footage {num_frames}")
    names = [str(n) for n in names]
    shared = [n for n in H36M17.joint_names if n in names]
    if not shared:
        raise FootageError(f"--truth '{path}': none of its joints ({', '.join(names)}) is one of the Human3.6M "
                           f"joints ({', '.join(H36M17.joint_names)})")
    truth = np.full((num_frames, len(H36M17.joint_names), 3), np.nan)
    truth[:, [H36M17.joint_names.index(n) for n in shared]] = points[:, [names.index(n) for n in shared]]
    return truth


def truth_error(points_3d: np.ndarray, truth: np.ndarray, approximated) -> dict:
    """The 3D error of ``points_3d`` (T, 17, 3) against ``truth`` (T, 17, 3; NaN where unknown), mm: MPJPE and
    median over the joints the truth holds and the keypoint layout marks itself (those made from other
    keypoints, ``approximated``, are left out), over the frames where the demo found them; per joint for all."""
    errors = np.linalg.norm(points_3d - truth, axis=-1)                                    # T, 17; NaN: missing
    known = np.isfinite(truth).all(-1).any(0)
    scored = known & ~np.isin(H36M17.joint_names, list(approximated))
    found = np.isfinite(errors[:, scored])

    def rounded(values):
        return None if not np.isfinite(values).any() else round(float(np.nanmean(values)), 2)
    return {"mpjpe_mm": rounded(errors[:, scored]),
            "median_mm": None if not found.any() else round(float(np.median(errors[:, scored][found])), 2),
            "joints": [n for n, s in zip(H36M17.joint_names, scored) if s],
            "left_out_approximated": [n for n in approximated if n in np.array(H36M17.joint_names)[known]],
            "joint_frames_found": int(found.sum()), "joint_frames": int(found.size),
            "per_joint_mpjpe_mm": {n: rounded(errors[:, j]) for j, n in enumerate(H36M17.joint_names) if known[j]}}


def video_fps(source: FrameSource) -> float:
    if source.images is not None:
        return 30.0
    import cv2
    capture = cv2.VideoCapture(str(source.path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps if fps > 0 else 30.0


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("demo_multiview")
    try:
        check_output_folder(args.out)
        detector, crop_size, crop_scale = load_detector(args.backbone_run) if args.backbone_run else (None, 0, 0.0)
        footage = load_footage(args.calibration, args.keypoints, args.layout, args.videos, args.cameras, args.subject,
                               args.toml_units, detector, crop_size, crop_scale)
        log.info("%d frames of %d cameras (%s); layout %s; approximated joints: %s", footage.num_frames,
                 len(footage.camera_names), ", ".join(footage.camera_names), footage.layout,
                 ", ".join(footage.approximated) or "none")
        truth = load_truth(args.truth, footage.num_frames) if args.truth else None
        recon = reconstruct(footage, args.min_confidence, args.inlier_px, args.smooth, args.optimise,
                            args.optimise_smooth, args.optimise_bones)
        if recon.before_optimisation is not None:
            after = summary(footage, recon)
            log.info("optimised over %d frames: median reprojection error over the inliers %s -> %s px, bone-length "
                     "std over the frames (median over the bones) %s -> %s mm, %d -> %d joints",
                     footage.num_frames, recon.before_optimisation["median_reprojection_error_px_inliers"],
                     after["median_reprojection_error_px_inliers"],
                     recon.before_optimisation["bone_length_std_mm_median"], after["bone_length_std_mm_median"],
                     recon.before_optimisation["valid_joints"], after["valid_joints"])
        if args.lifter_run:
            lifting, virtual, frames = load_lifter(args.lifter_run)
            lifted = lift_views(footage, recon, lifting, virtual, frames, args.min_confidence)
            recon = refine_with_lifter(recon, lifted, footage.cameras, args.lifter_blend, args.min_confidence)
            log.info("lifter %s: %d joints filled", args.lifter_run, int(recon.filled.sum()))
        stats = save_reconstruction(args.out, footage, recon)
        log.info("3D of %d of %d joints; median reprojection error %s px (per camera: %s)", stats["valid_joints"],
                 stats["joints"], stats["median_reprojection_error_px"],
                 ", ".join(f"{k} {v}" for k, v in stats["median_reprojection_error_px_per_camera"].items()))
        if truth is not None:
            report_truth_error(log, args.truth, Path(args.out), truth_error(recon.points_3d, truth,
                                                                            footage.approximated))
        if footage.videos:
            fps = args.fps or video_fps(footage.videos[0])
            path = render_overlay(Path(args.out) / "overlay.mp4", footage, recon, fps, args.view_height, truth=truth)
            still = args.still if args.still >= 0 else footage.num_frames // 2
            write_png(Path(args.out) / "overlay_still.png", frame_at(path, still))
            log.info("wrote %s and overlay_still.png (frame %d)", path, still)
        log.info("wrote %s", ", ".join(str(Path(args.out) / n) for n in ("poses_3d.npz", "poses_3d.json",
                                                                          "summary.json")))
    except (FootageError, CalibrationError, KeypointFormatError, VideoError, ConfigError, CheckpointError,
            DatasetError, PipelineConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def report_truth_error(log, truth_path: str, out: Path, error: dict) -> None:
    """Log the error against the truth and write it to ``truth_error.json``."""
    write_json_atomic({"truth": truth_path, **error}, out / "truth_error.json")
    log.info("3D error against the truth %s: MPJPE %s mm (median %s mm) over the %d joints %s (%d of %d "
             "joint-frames found); left out, made from other keypoints: %s; wrote %s", truth_path, error["mpjpe_mm"],
             error["median_mm"], len(error["joints"]), ", ".join(error["joints"]), error["joint_frames_found"],
             error["joint_frames"], ", ".join(error["left_out_approximated"]) or "none", out / "truth_error.json")


def frame_at(path: Path, index: int):
    for t, frame in enumerate(FrameSource(path).frames()):
        if t == index:
            return frame
    raise VideoError(f"'{path}' has no frame {index}")


if __name__ == "__main__":
    sys.exit(main())
