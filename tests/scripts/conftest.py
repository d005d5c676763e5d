"""A tiny trained image pipeline with an epipolar layer, shared by the script tests."""
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["DATASETS.SYNTHETIC.ACTIONS", "['walk']", "DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE", "8",
        "DATASETS.SYNTHETIC.TRAIN_SUBJECTS", "['S1']", "DATASETS.SYNTHETIC.TEST_SUBJECTS", "['S9']",
        "DATASETS.VAL_SUBJECTS", "[]", "DATASETS.SYNTHETIC.IMAGE_SIZE", "64", "DATASETS.TRAIN_STRIDE", "4", "DATASETS.TEST_STRIDE", "1",
        "SOLVER.MAX_EPOCHS", "1", "MODEL.FUSION.SAMPLES", "8", "VIS.PREVIEW_SAMPLES", "0"]


@pytest.fixture(scope="session")
def trained_epipolar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("epipolar") / "run"
    assert main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "r18_epipolar_dlt.yaml"), "OUTPUT_DIR", str(out),
                      *TINY]) == 0
    return out
