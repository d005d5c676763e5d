"""Benchmark one training step and one inference step of each pipeline at its published model size, and the
time the data loader takes to make one batch.

    python scripts/benchmark_steps.py [--device cpu|cuda] [--only linear,esmformer_27f] [--batch N]
                                      [--repeats 5] [--warmup 2] [--amp] [--channels-last] [--compile]

Each pipeline is built from its Human3.6M config (``configs/h36m``: the published layer sizes), fed batches of
the synthetic world in the same form (views, frames, image size), so nothing needs downloading. A training
step is forward, losses, backward and the optimiser step of the config's solver; an inference step is the
forward pass in eval mode without gradients. "data" is the time one loader process takes to make one batch
(``DATASETS.NUM_WORKERS`` processes work ahead of the model in training, so the step waits for data only if
data > step x workers). Prints the device, library versions, sizes, parameter counts and the median over
``--repeats`` after ``--warmup`` calls.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.benchmark import environment, median_seconds  # noqa: E402  (first: core sets thread defaults before numpy loads)

import torch  # noqa: E402

from core.config import load_config  # noqa: E402
from core.engine.speed_settings import compile_networks, use_channels_last  # noqa: E402
from core.engine.solver import build_optimizer  # noqa: E402
from datasets import build_dataset  # noqa: E402
from core.batch import collate_samples, move_batch  # noqa: E402
from modeling.pipelines import build_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# name: (Human3.6M config, default batch on the CPU, images?)
PIPELINES = {
    "r50_256_epipolar": ("r50_256_epipolar_zresidual.yaml", 2, True),
    "linear": ("linear_gt.yaml", 200, False),
    "lcn": ("lcn_gt.yaml", 200, False),
    "semgcn": ("semgcn_gt.yaml", 200, False),
    "poseformer_81f": ("poseformer_81f_gt.yaml", 32, False),
    "pose3d": ("pose3d_selfsup_cpn.yaml", 64, False),
    "esmformer_27f": ("esmformer_27f_gt_supervised.yaml", 32, False),
}


def synthetic_config(config: str, images: bool):
    """The Human3.6M config with the synthetic world as its data (the same sample form)."""
    overrides = ["DATASETS.NAME", "synthetic", "DATASETS.VAL_SUBJECTS", "[]", "DATASETS.SYNTHETIC.ACTIONS", "['walk']",
                 "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "100", "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5']",
                 "DATASETS.TRAIN_STRIDE", "1", "DATASETS.NUM_WORKERS", "0"]
    if images:  # random weights: the speed is the same as with ImageNet's, which may not be downloadable
        overrides += ["DATASETS.SYNTHETIC.IMAGE_SIZE", "256", "MODEL.BACKBONE.PRETRAINED", "none"]
    return load_config(str(ROOT / "configs" / "h36m" / config), overrides)


def benchmark(name: str, batch_size: int, device: torch.device, args) -> str:
    config, _, images = PIPELINES[name]
    cfg = synthetic_config(config, images)
    dataset = build_dataset(cfg, "train")
    make_batch = lambda: collate_samples([dataset[i % len(dataset)] for i in range(batch_size)])  # noqa: E731
    data_seconds = median_seconds(make_batch, max(1, args.repeats // 2), warmup=1)
    batch = move_batch(make_batch(), device)
    model = build_pipeline(cfg)
    model.prepare([batch])
    model.to(device)
    if args.channels_last and images:
        use_channels_last(model)
    if args.compile:
        compile_networks(model)
    s = cfg.SOLVER
    optimizer = build_optimizer(model.parameters(), s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY, s.MOMENTUM)
    amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=args.amp and device.type == "cuda")

    def train_step():
        model.train()
        with torch.autocast(**amp):
            losses = model.losses(model(batch, **model.truth_inputs(batch)), batch)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    def inference_step():
        model.eval()
        with torch.no_grad(), torch.autocast(**amp):
            model(batch, **model.truth_inputs(batch))

    train = median_seconds(train_step, args.repeats, args.warmup, device)
    infer = median_seconds(inference_step, args.repeats, args.warmup, device)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    views, frames = batch["cameras"].batch_shape[1], batch["keypoints_3d"].shape[1]
    return (f"{name:<18} {params:7.2f} M  batch {batch_size:>4} x {views} view(s) x {frames:>2} frame(s)  "
            f"train {1000 * train:9.1f} ms ({batch_size / train:8.1f} samples/s)  "
            f"infer {1000 * infer:8.1f} ms ({batch_size / infer:9.1f} samples/s)  data {1000 * data_seconds:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", default=",".join(PIPELINES), help="comma-separated: " + ", ".join(PIPELINES))
    parser.add_argument("--batch", type=int, default=0, help="batch size (default: each pipeline's CPU default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="CUDA: bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true", help="image pipeline: channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    args = parser.parse_args()
    device = torch.device(args.device)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        parser.error(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(PIPELINES)}")
    torch.manual_seed(0)
    print(environment(device))
    print(f"median of {args.repeats} after {args.warmup} warm-up calls; amp {args.amp}, channels_last "
          f"{args.channels_last}, compile {args.compile}")
    for name in names:
        print(benchmark(name, args.batch or PIPELINES[name][1], device, args), flush=True)


if __name__ == "__main__":
    main()
