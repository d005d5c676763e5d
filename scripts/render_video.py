"""Overlay videos of a finished run's test sequences from its saved predictions, without running the model.

    python scripts/render_video.py outs/linear_lifter [--sequences 3] [--fps 25] [--height 256] [--out DIR]

Rebuilds the run's test set from ``<run>/config.yaml``, checks that ``<run>/predictions.npz`` belongs to it
(as many samples, and each from the same sequence) and writes one MP4 per sequence to ``<run>/videos`` (or ``--out``), as
``VIS.VIDEO True`` does (``core/engine/sequence_video.py``).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import ConfigError, load_config  # noqa: E402
from core.engine.sequence_video import choose_sequences, write_sequence_videos  # noqa: E402
from datasets import DatasetError, build_dataset  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="output folder of a test run (config.yaml and predictions.npz)")
    parser.add_argument("--sequences", type=int, default=None, help="how many sequences (0 = all; default: the "
                                                                     "run's VIS.VIDEO_SEQUENCES)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate (default: the run's VIS.VIDEO_FPS)")
    parser.add_argument("--height", type=int, default=None, help="view height (default: the run's VIS.VIDEO_HEIGHT)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/videos)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    try:
        for name in ("config.yaml", "predictions.npz"):
            if not (run / name).is_file():
                raise ConfigError(f"'{run / name}' does not exist: render_video.py needs a run tested with "
                                  "TEST.SAVE_PREDICTIONS True")
        cfg = load_config(str(run / "config.yaml"), [])
        try:
            with np.load(run / "predictions.npz", allow_pickle=False) as archive:
                predictions = dict(archive)
        except (OSError, ValueError) as err:
            raise ConfigError(f"'{run / 'predictions.npz'}' cannot be read: {err}") from None
        if "absolute" not in predictions:
            raise ConfigError(f"'{run / 'predictions.npz'}' was written by an older version (no 'absolute'); test "
                              "the run again")
        test_set = build_dataset(cfg, "test")
        sequences = test_set.sample_sequences()
        if len(predictions["pred_3d"]) != len(test_set) or not np.array_equal(predictions["sequence"].astype(str),
                                                                               sequences.astype(str)):
            raise ConfigError(f"'{run / 'predictions.npz'}' holds {len(predictions['pred_3d'])} samples that do not "
                              f"match the {len(test_set)} test samples of '{run / 'config.yaml'}'")
    except (ConfigError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    v = cfg.VIS
    chosen = choose_sequences(sequences, v.VIDEO_SEQUENCES if args.sequences is None else args.sequences)
    written = write_sequence_videos(test_set, predictions["pred_3d"], chosen, bool(predictions["absolute"]),
                                    args.out or run / "videos", args.fps or v.VIDEO_FPS, args.height or v.VIDEO_HEIGHT)
    print("\n".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
