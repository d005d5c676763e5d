"""Benchmark of triangulation: 3D points per second on the CPU, and against aniposelib side by side.

Without options: for 2, 4 and 8 views of the Human3.6M-like synthetic ring (float64 cameras, as the datasets give
them), the forward pass of the ``dlt`` head (undistortion included), ``triangulate_dlt`` alone on 2D already
undistorted, the ``ransac`` head (all pairs of views) and the DLT part of the ``algebraic`` head (confidences
normalised over the views, then the weighted DLT), at ``--batch`` samples of 17 joints.

With ``--vs-aniposelib``: the same points through aniposelib's ``CameraGroup.triangulate`` (OpenCV undistortion,
then its numba DLT point by point; float64) and through EpiPose's DLT (``triangulate_cameras``), confidence-weighted
DLT and RANSAC head, in one process: time per point, EpiPose's speed-up (aniposelib's time / EpiPose's) and the
MPJPE of each. Two sets of points, each 100k+ points of 4 views with lens distortion:

- ``synthetic``: the synthetic world's Human3.6M-like rig, random poses' joints, 2 px Gaussian noise and
  detector-like confidences; MPJPE against the truth;
- ``pose2sim``: the real OpenPose detections of ``../shared/data/pose2sim`` (4 cameras, 100 frames, Human3.6M
  joints, views below 0.3 confidence missing) through its calibration, repeated to 100k+ points; no truth, so the
  "MPJPE" column is the mean distance from aniposelib's DLT.

Every row also gives the median reprojection error (px) of its points over the views that saw them.

EpiPose's large float64 batches run fused (``core.geometry.fused``); the first call compiles (seconds, not timed:
every figure is the median of ``--repeats`` calls after a warm-up). aniposelib is an optional install, not a
requirement of EpiPose; without it the script says how to get it and prints EpiPose's columns alone:

    pip install --no-deps aniposelib && pip install numba scipy toml pandas jax
    python scripts/benchmark_triangulation.py --vs-aniposelib [--repeats 5] [--threads N]
    python scripts/benchmark_triangulation.py [--batch 256] [--repeats 20]

(aniposelib depends on opencv-contrib-python, whose ``cv2`` would replace the one EpiPose installs; the calls used
here need only the plain ``cv2``, hence ``--no-deps``.)
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.benchmark import environment, median_seconds  # noqa: E402  (first: core sets thread defaults before numpy loads)

from core.geometry.cameras import Cameras  # noqa: E402
from core.geometry.triangulation import reprojection_errors, triangulate_cameras, triangulate_dlt  # noqa: E402
from datasets.synthetic.rigs import h36m_like_ring  # noqa: E402
from modeling.heads.dlt import DLTHead  # noqa: E402
from modeling.heads.ransac import RansacHead  # noqa: E402

NUM_JOINTS = 17
POSE2SIM = Path(__file__).resolve().parents[2] / "shared" / "data" / "pose2sim"
INSTALL_ANIPOSELIB = "pip install --no-deps aniposelib && pip install numba scipy toml pandas jax"


def algebraic_dlt(keypoints_2d, confidence, cameras):
    """The DLT part of the algebraic head: view-normalised confidences as row weights."""
    weights = confidence / confidence.sum(dim=1, keepdim=True) + 1e-5
    return triangulate_cameras(cameras, keypoints_2d, weights)


def heads_table(batch: int, repeats: int) -> None:
    print(f"batch {batch} x {NUM_JOINTS} joints = {batch * NUM_JOINTS} points per call, float64 cameras, median "
          f"of {repeats} after warm-up")
    generator = torch.Generator().manual_seed(0)
    heads = {"dlt": DLTHead(), "dlt of undistorted 2D": None, "ransac": RansacHead(inlier_threshold_px=15.0),
             "algebraic (DLT part)": algebraic_dlt}
    print(f"{'views':>5}  " + "  ".join(f"{name:>22}" for name in heads))
    for views in (2, 4, 8):
        cameras = h36m_like_ring(views).unsqueeze(0).expand(batch, views)
        points = torch.rand(batch, NUM_JOINTS, 3, generator=generator, dtype=torch.float64) \
            * torch.tensor([800.0, 800.0, 1600.0]) + torch.tensor([-400.0, -400.0, 100.0])
        keypoints = cameras.project(points.unsqueeze(1))
        keypoints = keypoints + 2.0 * torch.randn(keypoints.shape, generator=generator, dtype=torch.float64)
        confidence = 0.5 + 0.5 * torch.rand(batch, views, NUM_JOINTS, generator=generator, dtype=torch.float64)
        undistorted = cameras.undistort_pixels(keypoints)  # the DLT alone, without the cost of the lens model
        heads["dlt of undistorted 2D"] = lambda k, c, cams: triangulate_dlt(undistorted, cams.projection_matrices)
        rates = []
        for head in heads.values():
            with torch.no_grad():
                seconds = median_seconds(lambda: head(keypoints, confidence, cameras), repeats)
            rates.append(batch * NUM_JOINTS / seconds)
        print(f"{views:>5}  " + "  ".join(f"{rate:>16,.0f} pts/s" for rate in rates))


def synthetic_points(count: int):
    """(cameras (V,), 2D (V, N, 2), confidence (V, N), truth (N, 3) or None) on the synthetic world's rig."""
    generator = torch.Generator().manual_seed(0)
    cameras = h36m_like_ring(4)
    truth = torch.rand(count, 3, generator=generator, dtype=torch.float64) \
        * torch.tensor([800.0, 800.0, 1600.0]) + torch.tensor([-400.0, -400.0, 100.0])
    keypoints = cameras.project(truth.unsqueeze(0)) + 2.0 * torch.randn(4, count, 2, generator=generator,
                                                                        dtype=torch.float64)
    confidence = 0.5 + 0.5 * torch.rand(4, count, generator=generator, dtype=torch.float64)
    return cameras, keypoints, confidence, truth


def pose2sim_points(count: int):
    """The Pose2Sim recording's detections of person 0, repeated to at least ``count`` points (no truth)."""
    from datasets.footage import read_footage
    footage = read_footage(POSE2SIM / "calibration" / "Calib_qualisys.toml",
                           [POSE2SIM / "openpose" / f"cam0{i}_json" for i in range(1, 5)], layout="body25b")
    keypoints = torch.from_numpy(footage.keypoints_2d[:, :, 0]).movedim(1, 0).flatten(1, 2)   # (V, T J, 2)
    confidence = torch.from_numpy(footage.confidence[:, :, 0]).movedim(1, 0).flatten(1, 2)
    keypoints = torch.where((confidence >= 0.3).unsqueeze(-1), keypoints, torch.nan)
    repeats = -(-count // keypoints.shape[1])
    return footage.cameras, keypoints.repeat(1, repeats, 1), confidence.repeat(1, repeats), None


def aniposelib_group(cameras: Cameras):
    """aniposelib's CameraGroup of the same cameras (world mm)."""
    import cv2
    from aniposelib.cameras import Camera, CameraGroup
    return CameraGroup([Camera(matrix=K.numpy(), dist=dist.numpy(), rvec=cv2.Rodrigues(R.numpy())[0].ravel(),
                               tvec=t.numpy()) for K, R, t, dist in zip(cameras.K, cameras.R, cameras.t, cameras.dist)])


def median_reprojection_px(points: np.ndarray, cameras: Cameras, keypoints: torch.Tensor) -> float:
    """Median distance (px) between the detections and the projections of ``points`` (N, 3), over the views that
    saw each point."""
    errors = reprojection_errors(torch.from_numpy(points), cameras, keypoints)
    return float(errors[torch.isfinite(errors)].median())


def mpjpe(points: np.ndarray, reference: np.ndarray) -> float:
    both = np.isfinite(points).all(-1) & np.isfinite(reference).all(-1)
    return float(np.linalg.norm(points[both] - reference[both], axis=-1).mean())


def versus_aniposelib(repeats: int, count: int) -> None:
    try:
        import aniposelib  # noqa: F401
    except ImportError:
        aniposelib = None
        print(f"aniposelib is not installed ({INSTALL_ANIPOSELIB}): its columns are left out")
    sets = {"synthetic": synthetic_points}
    if POSE2SIM.is_dir():
        sets["pose2sim"] = pose2sim_points
    else:
        print(f"{POSE2SIM} is absent: the Pose2Sim rows are left out")
    print(f"{'points':>9} {'set':>10}  {'method':<38} {'us/point':>9} {'speed-up':>9} {'MPJPE mm':>9} "
          f"{'reproj. px':>10}")
    for name, make in sets.items():
        cameras, keypoints, confidence, truth = make(count)
        points = keypoints.shape[1]
        weights = torch.where(torch.isfinite(keypoints).all(-1), confidence, 0.0)
        batched = (cameras.unsqueeze(0), keypoints.unsqueeze(0), weights.unsqueeze(0))
        ransac = RansacHead(inlier_threshold_px=15.0)
        ours = {"EpiPose DLT (triangulate_cameras)": lambda: triangulate_cameras(cameras, keypoints).points_3d,
                "EpiPose DLT, confidence-weighted": lambda: triangulate_cameras(cameras, keypoints,
                                                                                 weights).points_3d,
                "EpiPose RANSAC head (all pairs, 15 px)": lambda: ransac(batched[1], batched[2],
                                                                         batched[0]).points_3d[0]}
        results, reference, baseline = {}, truth, None
        if aniposelib is not None:
            group, numpy_points = aniposelib_group(cameras), keypoints.numpy()
            seconds = median_seconds(lambda: group.triangulate(numpy_points, progress=False), repeats, warmup=1)
            theirs = group.triangulate(numpy_points, progress=False)
            baseline = seconds
            reference = truth if truth is not None else torch.from_numpy(theirs)
            results["aniposelib CameraGroup.triangulate"] = (seconds, theirs)
        with torch.no_grad():
            for method, call in ours.items():
                results[method] = (median_seconds(call, repeats), call().numpy())
        if reference is None:
            reference = torch.from_numpy(results["EpiPose DLT (triangulate_cameras)"][1])
        for method, (seconds, result) in results.items():
            speed_up = f"{baseline / seconds:>8.1f}x" if baseline is not None else f"{'-':>9}"
            reprojection = median_reprojection_px(result, cameras, keypoints)
            print(f"{points:>9,} {name:>10}  {method:<38} {1e6 * seconds / points:>9.3f} {speed_up} "
                  f"{mpjpe(result, reference.numpy()):>9.4f} {reprojection:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs-aniposelib", action="store_true",
                        help="time aniposelib and EpiPose on the same 100k+ points (synthetic and Pose2Sim)")
    parser.add_argument("--points", type=int, default=171768, help="--vs-aniposelib: points per set")
    parser.add_argument("--batch", type=int, default=256, help="samples per call (each with 17 joints)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default: 20, or 5 with "
                                                                  "--vs-aniposelib)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(environment())
    if args.vs_aniposelib:
        versus_aniposelib(args.repeats or 5, args.points)
    else:
        heads_table(args.batch, args.repeats or 20)


if __name__ == "__main__":
    main()
