"""Pictures of what an image pipeline sees in one test sample: a heatmap grid (one row per view, one column per
joint) and, with an epipolar fusion layer, the attention along the epipolar line of a reference pixel.

    python scripts/vis_sample.py outs/r18_epipolar_dlt [--sample 0] [--joint l_wrist] [--view 0]
                                 [--pixel X Y] [--weights FILE] [--out DIR]

Rebuilds the run from ``<run>/config.yaml`` with its best weights (``model_best.pth``, else ``model_final.pth``,
or ``--weights``) and writes ``heatmaps_sample<N>.png`` and ``epipolar_sample<N>_view<V>_<joint>.png`` into
``<run>/pictures`` (or ``--out``). The reference pixel is where the network puts ``--joint`` in ``--view``, or
``--pixel`` (crop pixels); the layer attends from the feature-map cell that holds it.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import ConfigError  # noqa: E402
from core.engine.checkpoint import CheckpointError  # noqa: E402
from core.engine.trained_run import load_image_pipeline  # noqa: E402
from core.skeleton import SkeletonError  # noqa: E402
from core.vis import epipolar_picture, heatmap_grid, write_png  # noqa: E402
from datasets import DatasetError, build_dataset  # noqa: E402
from core.batch import collate_samples  # noqa: E402
from core.images import to_uint8_images  # noqa: E402
from modeling.heads.decoding import heatmap_to_image, image_to_heatmap  # noqa: E402
from modeling.pipelines import PipelineConfigError  # noqa: E402

PICTURE_SIDE = 256  # epipolar picture: crops smaller than this are enlarged to it


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="output folder of a trained image-pipeline run (config.yaml and weights)")
    parser.add_argument("--sample", type=int, default=0, help="test sample index")
    parser.add_argument("--joint", default="l_wrist", help="reference joint (a joint name of the run's skeleton)")
    parser.add_argument("--view", type=int, default=0, help="reference view")
    parser.add_argument("--pixel", type=float, nargs=2, default=None, metavar=("X", "Y"),
                        help="reference pixel in the view's crop instead of the joint")
    parser.add_argument("--weights", default=None, help="checkpoint (default: the run's best, else final)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/pictures)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    try:
        cfg, detector = load_image_pipeline(run, args.weights)
        test_set = build_dataset(cfg, "test")
        if not 0 <= args.sample < len(test_set):
            raise ConfigError(f"--sample {args.sample}: the test set has {len(test_set)} samples")
        sample = test_set[args.sample]
        if not 0 <= args.view < len(sample["cameras"]):
            raise ConfigError(f"--view {args.view}: the samples have {len(sample['cameras'])} views")
        joint = detector.skeleton.index(args.joint)
    except (ConfigError, CheckpointError, DatasetError, PipelineConfigError, SkeletonError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with torch.no_grad():
        outputs = detector.detect(collate_samples([sample]), attention=True)
    out = Path(args.out) if args.out else run / "pictures"
    out.mkdir(parents=True, exist_ok=True)
    images = to_uint8_images(sample["images"])
    labels = [f"cam {int(c)}" for c in sample["camera_ids"]]
    grid = heatmap_grid(images, outputs["heatmaps"][0].numpy(), detector.skeleton.joint_names)
    write_png(out / f"heatmaps_sample{args.sample}.png", grid)
    written = [out / f"heatmaps_sample{args.sample}.png"]
    if "epipolar" in outputs:
        stride = detector.backbone.stride
        epipolar = {k: v[0] for k, v in outputs["epipolar"].items()}
        pixel = torch.tensor(args.pixel) if args.pixel else outputs["pred_2d"][0, args.view, joint]
        height, width = epipolar["attention"].shape[2:4]
        cell = image_to_heatmap(pixel.double(), stride).round().long()
        x, y = int(cell[0].clamp(0, width - 1)), int(cell[1].clamp(0, height - 1))
        zoom = max(1.0, PICTURE_SIDE / images.shape[1])  # small crops are enlarged to see the line

        def zoomed(crop_pixels):
            return (heatmap_to_image(crop_pixels, stride).numpy() + 0.5) * zoom - 0.5
        large = np.stack([cv2.resize(im, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR) for im in images])
        picture = epipolar_picture(large, args.view, zoomed(torch.tensor([x, y]).double()),
                                   epipolar["sources"][args.view].tolist(),
                                   zoomed(epipolar["sample_pixels"][args.view, :, y, x]),
                                   epipolar["attention"][args.view, :, y, x].numpy(),
                                   epipolar["sample_mask"][args.view, :, y, x].numpy(), labels)
        name = "pixel" if args.pixel else args.joint
        written.append(out / f"epipolar_sample{args.sample}_view{args.view}_{name}.png")
        write_png(written[-1], picture)
    print("\n".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
