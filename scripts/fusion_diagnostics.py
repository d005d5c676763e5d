"""Where a trained epipolar layer looks, joint by joint: the attention's distance to the true correspondence.

    python scripts/fusion_diagnostics.py outs/r18_epipolar_occluded_finetune [--control outs/r18_baseline_occluded_finetune]
                                         [--weights FILE] [--every N] [--out FILE]

For every test sample (every ``--every``-th), reference view, joint and source view, the layer's attention is read at
the feature cell that holds the joint's true 2D in the reference view, and compared with the joint's true 2D in the
source view (feature pixels): the distance of the attention-weighted sample (``expected``) and of the most attended
sample (``peak``). The figures are split by whether the joint is visible or occluded in the reference view and in the
source view (the dataset's ``visibility``). With ``--control`` (a run on the same test set without the layer, e.g. the
fine-tune control), the joint-views are also split by what the layer did to their 2D, from both runs'
``predictions.npz``: "fixed" (wrong in the control, right with the layer), "broken" (the reverse), "both right" and
"both wrong", with "right" the JDR's 0.05 x crop width. The summary is printed and written as JSON to ``--out``
(default ``<run>/fusion_diagnostics.json``).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.batch import collate_samples  # noqa: E402
from core.config import ConfigError  # noqa: E402
from core.engine.checkpoint import CheckpointError  # noqa: E402
from core.engine.trained_run import load_image_pipeline  # noqa: E402
from core.io import write_json_atomic  # noqa: E402
from core.sample_schema import centre_frame, exact_2d  # noqa: E402
from datasets import DatasetError, build_dataset  # noqa: E402
from modeling.heads.decoding import image_to_heatmap  # noqa: E402
from modeling.pipelines import PipelineConfigError  # noqa: E402

JDR_THRESHOLD = 0.05   # x crop width, as the evaluator's JDR
BATCH = 8


def attention_offsets(epipolar, truth_feature_px: torch.Tensor):
    """Distances (feature pixels) from the true correspondence of the attention-weighted and the most attended sample.

    ``epipolar``: the layer's attention dict for a batch (``EpipolarTransformer.forward(return_attention=True)``);
    ``truth_feature_px`` (B, V, J, 2) the joints' true 2D in feature pixels. Returns ``expected``, ``peak`` (B, V, J, S)
    and ``usable`` (B, V, J, S): the joint's cell lies in the map and its epipolar line meets the source map."""
    attention, pixels, mask = epipolar["attention"], epipolar["sample_pixels"], epipolar["sample_mask"]
    batch, views, sources, height, width, samples = attention.shape
    cell = truth_feature_px.round().long()
    inside = ((cell[..., 0] >= 0) & (cell[..., 0] < width) & (cell[..., 1] >= 0) & (cell[..., 1] < height))
    flat = (cell[..., 1].clamp(0, height - 1) * width + cell[..., 0].clamp(0, width - 1))           # (B, V, J)
    index = flat[:, :, None, :].expand(-1, -1, sources, -1)                                          # (B, V, S, J)

    def at_cells(values):          # (B, V, S, h, w, K, ...) -> (B, V, J, S, K, ...)
        rest = values.shape[6:]
        flat_values = values.reshape(batch, views, sources, height * width, samples, *rest)
        gathered = flat_values.gather(3, index.reshape(*index.shape, 1, *(1,) * len(rest)).expand(
            -1, -1, -1, -1, samples, *rest))
        return gathered.transpose(2, 3)
    weights, points, valid = at_cells(attention), at_cells(pixels), at_cells(mask)
    batch_index = torch.arange(batch)[:, None, None]
    truth_in_source = truth_feature_px[batch_index, epipolar["sources"]]                          # (B, V, S, J, 2)
    truth_in_source = truth_in_source.transpose(2, 3)                                               # (B, V, J, S, 2)
    expected = (weights.unsqueeze(-1) * points).sum(-2)
    peak = points.gather(-2, weights.argmax(-1)[..., None, None].expand(*weights.shape[:-1], 1, 2)).squeeze(-2)
    usable = valid.any(-1) & inside.unsqueeze(-1)
    return ((expected - truth_in_source).norm(dim=-1), (peak - truth_in_source).norm(dim=-1), usable)


def _summary(distances: np.ndarray) -> dict:
    if distances.size == 0:
        return {"count": 0}
    return {"count": int(distances.size), "median_px": round(float(np.median(distances)), 3),
            "within_1px_percent": round(100 * float((distances <= 1).mean()), 1),
            "within_2px_percent": round(100 * float((distances <= 2).mean()), 1)}


def _outcomes(run: Path, control: Path, count: int, every: int) -> np.ndarray:
    """(N, V, J) strings: what the layer did to each joint-view's 2D, from both runs' predictions."""
    right = []
    for folder in (run, control):
        path = folder / "predictions.npz"
        if not path.is_file():
            raise ConfigError(f"'{path}' does not exist: test the run first (DOTRAIN False)")
        with np.load(path) as data:
            error = np.linalg.norm(data["pred_2d"] - data["target_2d"], axis=-1)
            right.append((error <= JDR_THRESHOLD * data["crop_size"][..., None])[::every][:count])
    if right[0].shape != right[1].shape:
        raise ConfigError(f"'{run}' and '{control}' were tested on different sets: {right[0].shape} vs {right[1].shape}")
    fused, plain = right
    return np.select([fused & plain, fused & ~plain, ~fused & plain], ["both right", "fixed", "broken"], "both wrong")


def diagnose(detector, test_set, every: int = 1):
    """(expected, peak, usable, reference_visible, source_visible) over the test set, each (N, V, J, S)."""
    columns = {key: [] for key in ("expected", "peak", "usable", "reference_visible", "source_visible")}
    indices = list(range(0, len(test_set), every))
    for start in range(0, len(indices), BATCH):
        batch = collate_samples([test_set[i] for i in indices[start:start + BATCH]])
        with torch.no_grad():
            outputs = detector.detect(batch, attention=True)
        if "epipolar" not in outputs:
            raise ConfigError("the run has no epipolar layer (MODEL.FUSION.NAME none)")
        epipolar = outputs["epipolar"]
        truth = image_to_heatmap(centre_frame(exact_2d(batch)).double(), detector.backbone.stride)
        expected, peak, usable = attention_offsets(epipolar, truth)
        visible = centre_frame(batch["visibility"]) > 0.5                                            # (B, V, J)
        source_visible = visible[torch.arange(len(visible))[:, None, None], epipolar["sources"]].transpose(2, 3)
        for key, value in zip(columns, (expected, peak, usable, visible.unsqueeze(-1).expand_as(usable),
                                        source_visible)):
            columns[key].append(value.numpy())
    return {key: np.concatenate(value) for key, value in columns.items()}


def report(found, outcomes=None) -> dict:
    """The summary: distances by visibility in the reference and the source view, and by outcome."""
    usable = found["usable"]
    groups = {}
    for ref_name, ref in (("visible", found["reference_visible"]), ("occluded", ~found["reference_visible"])):
        for src_name, src in (("visible", found["source_visible"]), ("occluded", ~found["source_visible"])):
            groups[f"{ref_name} in reference, {src_name} in source"] = ref & src
    if outcomes is not None:
        for name in ("fixed", "broken", "both right", "both wrong"):
            groups[f"{name} (2D against the control)"] = np.broadcast_to((outcomes == name)[..., None], usable.shape)
            groups[f"{name}, occluded in reference"] = groups[f"{name} (2D against the control)"] & \
                ~found["reference_visible"]
    return {name: {"expected": _summary(found["expected"][mask & usable]),
                   "peak": _summary(found["peak"][mask & usable])} for name, mask in groups.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="output folder of a trained run with an epipolar layer")
    parser.add_argument("--control", default=None, help="a run without the layer on the same test set")
    parser.add_argument("--weights", default=None, help="checkpoint (default: the run's best, else final)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th test sample")
    parser.add_argument("--out", default=None, help="JSON file (default: <run>/fusion_diagnostics.json)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    try:
        if args.every < 1:
            raise ConfigError(f"--every must be a positive integer, got {args.every}")
        cfg, detector = load_image_pipeline(run, args.weights)
        detector.eval()
        test_set = build_dataset(cfg, "test")
        found = diagnose(detector, test_set, args.every)
        outcomes = _outcomes(run, Path(args.control), len(found["usable"]), args.every) if args.control else None
    except (ConfigError, CheckpointError, DatasetError, PipelineConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = report(found, outcomes)
    width = max(len(name) for name in summary)
    print(f"{'joint-views':{width}}  {'count':>6}  expected: median / <=1 px / <=2 px   peak: median / <=1 px / <=2 px")
    for name, row in summary.items():
        cells = [f"{row[k]['median_px']:6.2f} / {row[k]['within_1px_percent']:5.1f} % / "
                 f"{row[k]['within_2px_percent']:5.1f} %" if row[k]["count"] else "     -" for k in ("expected", "peak")]
        print(f"{name:{width}}  {row['expected']['count']:6d}  {cells[0]}   {cells[1]}")
    out = Path(args.out) if args.out else run / "fusion_diagnostics.json"
    write_json_atomic({"run": str(run), "control": args.control, "every": args.every,
                       "distances_feature_px": summary}, out)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
