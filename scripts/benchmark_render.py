"""Benchmark the synthetic world's renderer: views per second.

    python3 scripts/benchmark_render.py [--size 256] [--views 4] [--repeats 20]

Prints, for one CPU process (torch threads as set by the environment): the time of
``render_capsules`` alone, of ``random_backgrounds`` alone, and of a whole images-mode sample
(crop cameras, backgrounds, rendering, normalisation), as the median over repeats after a warm-up.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.benchmark import environment, median_seconds  # noqa: E402  (first: core sets thread defaults before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec  # noqa: E402
from datasets.synthetic.render import random_backgrounds, render_capsules  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels")
    parser.add_argument("--views", type=int, default=4, help="cameras of the rig (2..8)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    world = SyntheticWorld(WorldSpec(subjects=["S1"], actions=["walk"], frames_per_sequence=50,
                                     rig="h36m_ring" if args.views == 4 else "random", num_cameras=args.views))
    dataset = SyntheticMultiView(world, mode="images", image_size=args.size)
    seq = world.sequences[0]
    crop = dataset.crop_cameras(seq, 10, seq.cameras)
    points = torch.from_numpy(seq.body.surface_points(seq.keypoints_3d[10])).double().expand(len(crop), -1, -1)
    pixels = crop.project(points).numpy()
    depth = crop.world_to_camera(points)[..., 2].numpy()
    focal = crop.focal_lengths.mean(-1).numpy()
    part_joints, radius, color = seq.body.part_arrays()
    rng = np.random.default_rng(0)
    background = random_backgrounds(rng, len(crop), args.size, args.size)

    t_render = median_seconds(lambda: render_capsules(pixels, depth, focal, part_joints, radius, color, background,
                                                      rng=rng), args.repeats)
    t_background = median_seconds(lambda: random_backgrounds(rng, len(crop), args.size, args.size), args.repeats)
    counter = iter(range(10**9))
    t_sample = median_seconds(lambda: dataset[next(counter) % len(dataset)], args.repeats)

    print(environment())
    print(f"sizes: {args.views} views of {args.size}x{args.size}, {len(part_joints)} body parts; "
          f"median of {args.repeats} after warm-up")
    for name, seconds in (("render_capsules", t_render), ("random_backgrounds", t_background),
                          ("whole images-mode sample", t_sample)):
        print(f"{name:<26} {seconds * 1e3:8.2f} ms per {args.views} views = {args.views / seconds:8.1f} views/s")


if __name__ == "__main__":
    main()
