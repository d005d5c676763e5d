"""Benchmark the epipolar transformer (modeling/fusion/epipolar.py): forward and forward + backward time.

    python3 scripts/benchmark_epipolar.py [--device cpu|cuda] [--batch 1] [--views 4] [--channels 256]
                                          [--size 64] [--samples 64] [--repeats 3] [--warmup 1]

The published setting of He et al. (CVPR 2020): 4 views, 256 channels, 64 x 64 feature maps,
64 samples per epipolar line. Runs the layer in training mode with ``sources="nearest"`` and
``sources="all"`` on a random synthetic rig (lens distortion on), and prints the device, sizes,
library versions and the median time over ``repeats`` after ``warmup`` runs.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.benchmark import environment, median_seconds  # noqa: E402  (first: core sets thread defaults before numpy loads)

import torch  # noqa: E402

from datasets.synthetic.rigs import random_rig  # noqa: E402
from modeling.fusion.epipolar import EpipolarTransformer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--size", type=int, default=64, help="feature map height and width")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    device = torch.device(args.device)

    cameras = random_rig(args.views, seed=0).for_feature_map(1000 / args.size, (args.size, args.size))
    cameras = cameras.unsqueeze(0).expand(args.batch, args.views).to(device=device)
    features = torch.randn(args.batch, args.views, args.channels, args.size, args.size, device=device)

    print(environment(device))
    print(f"sizes: B={args.batch} V={args.views} C={args.channels} h=w={args.size} samples={args.samples}; "
          f"median of {args.repeats} after {args.warmup} warm-up")
    for sources in ("nearest", "all"):
        layer = EpipolarTransformer(args.channels, samples=args.samples, sources=sources).to(device).train()
        inputs = features.clone().requires_grad_()

        def forward():
            with torch.no_grad():
                layer(inputs, cameras)

        def forward_backward():
            layer(inputs, cameras).square().mean().backward()

        print(f"sources={sources:8s} forward {1e3 * median_seconds(forward, args.repeats, args.warmup, device):9.1f} ms   "
              f"forward+backward {1e3 * median_seconds(forward_backward, args.repeats, args.warmup, device):9.1f} ms")


if __name__ == "__main__":
    main()
