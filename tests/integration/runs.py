"""The command-line run the end-to-end tests share: one of the synthetic configs on a small world, into a
temporary folder."""
from pathlib import Path

import main

ROOT = Path(__file__).resolve().parents[2]
# A small world: 2 actions, 40 frames per sequence, so each run takes seconds.
SMALL = ["DATASETS.SYNTHETIC.ACTIONS", "['walk','squat']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "40",
         "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1','S5']", "DATASETS.VAL_SUBJECTS", "[]",
         "VIS.PREVIEW_SAMPLES", "1"]


def run(tmp_path, config, *overrides):
    out = tmp_path / "out"
    code = main.main(["--cfg", str(ROOT / "configs" / "synthetic" / config), "OUTPUT_DIR", str(out),
                      *SMALL, *overrides])
    return code, out
