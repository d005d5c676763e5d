"""Benchmark of the triangulation heads: 3D points per second on CPU.

For 2, 4 and 8 views of the Human3.6M-like synthetic ring (float64 cameras, as the datasets give
them), times the forward pass of the ``dlt`` head (undistortion included), ``triangulate_dlt`` alone on
2D already undistorted, the ``ransac`` head (all pairs of views) and the DLT part of the ``algebraic`` head
(confidences normalised over the views, then the weighted DLT of ``core.geometry``, undistortion
included); prints the median over repeats after warm-up.

    python scripts/benchmark_triangulation.py [--batch 256] [--repeats 20] [--threads N]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.benchmark import environment, median_seconds  # noqa: E402  (first: core sets thread defaults before numpy loads)

from core.geometry.triangulation import triangulate_cameras, triangulate_dlt  # noqa: E402
from datasets.synthetic.rigs import h36m_like_ring  # noqa: E402
from modeling.heads.dlt import DLTHead  # noqa: E402
from modeling.heads.ransac import RansacHead  # noqa: E402

NUM_JOINTS = 17


def algebraic_dlt(keypoints_2d, confidence, cameras):
    """The DLT part of the algebraic head: view-normalised confidences as row weights."""
    weights = confidence / confidence.sum(dim=1, keepdim=True) + 1e-5
    return triangulate_cameras(cameras, keypoints_2d, weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="samples per call (each with 17 joints)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(environment())
    print(f"batch {args.batch} x {NUM_JOINTS} joints = "
          f"{args.batch * NUM_JOINTS} points per call, float64 cameras, median of {args.repeats} after warm-up")
    generator = torch.Generator().manual_seed(0)
    heads = {"dlt": DLTHead(), "dlt of undistorted 2D": None, "ransac": RansacHead(inlier_threshold_px=15.0),
             "algebraic (DLT part)": algebraic_dlt}
    print(f"{'views':>5}  " + "  ".join(f"{name:>22}" for name in heads))
    for views in (2, 4, 8):
        cameras = h36m_like_ring(views).unsqueeze(0).expand(args.batch, views)
        points = torch.rand(args.batch, NUM_JOINTS, 3, generator=generator, dtype=torch.float64) \
            * torch.tensor([800.0, 800.0, 1600.0]) + torch.tensor([-400.0, -400.0, 100.0])
        keypoints = cameras.project(points.unsqueeze(1))
        keypoints = keypoints + 2.0 * torch.randn(keypoints.shape, generator=generator, dtype=torch.float64)
        confidence = 0.5 + 0.5 * torch.rand(args.batch, views, NUM_JOINTS, generator=generator, dtype=torch.float64)
        undistorted = cameras.undistort_pixels(keypoints)  # the DLT alone, without the cost of the lens model
        heads["dlt of undistorted 2D"] = lambda k, c, cams: triangulate_dlt(undistorted, cams.projection_matrices)
        rates = []
        for head in heads.values():
            with torch.no_grad():
                seconds = median_seconds(lambda: head(keypoints, confidence, cameras), args.repeats)
            rates.append(args.batch * NUM_JOINTS / seconds)
        print(f"{views:>5}  " + "  ".join(f"{rate:>16,.0f} pts/s" for rate in rates))


if __name__ == "__main__":
    main()
