"""The epipolar layer's attention against the true correspondence (scripts/fusion_diagnostics.py)."""
import json

import numpy as np
import pytest
import torch

import main
from scripts.fusion_diagnostics import attention_offsets, main as fusion_diagnostics
from tests.scripts.conftest import ROOT, TINY


def test_attention_offsets_measure_from_the_joint_cell_to_its_source_truth():
    # 1 sample, 2 views (each the other's source), 3 x 4 maps, 2 samples per line, 1 joint
    batch, views, height, width, samples = 1, 2, 3, 4, 2
    attention = torch.zeros(batch, views, 1, height, width, samples)
    pixels = torch.zeros(batch, views, 1, height, width, samples, 2, dtype=torch.float64)
    mask = torch.ones(batch, views, 1, height, width, samples, dtype=torch.bool)
    truth = torch.tensor([[[[1.2, 2.1]], [[3.0, 0.4]]]], dtype=torch.float64)    # (B, V, J, 2) x, y
    # view 0's joint cell is (x 1, y 2): its two samples in view 1 at (3, 0.4) (the truth) and (3, 2.4)
    pixels[0, 0, 0, 2, 1] = torch.tensor([[3.0, 0.4], [3.0, 2.4]], dtype=torch.float64)
    attention[0, 0, 0, 2, 1] = torch.tensor([0.75, 0.25])
    # view 1's joint cell is (x 3, y 0): its line misses view 0's map
    mask[0, 1, 0, 0, 3] = False
    epipolar = {"attention": attention, "sample_pixels": pixels, "sample_mask": mask,
                "sources": torch.tensor([[[1], [0]]])}
    expected, peak, usable = attention_offsets(epipolar, truth)
    assert expected.shape == peak.shape == usable.shape == (1, 2, 1, 1)
    assert torch.allclose(expected[0, 0, 0, 0], torch.tensor(0.5, dtype=torch.float64))   # 0.25 x 2 px
    assert peak[0, 0, 0, 0] == 0
    assert usable.tolist() == [[[[True]], [[False]]]]


@pytest.fixture(scope="module")
def control_run(tmp_path_factory):
    """The tiny run's control: the same recipe without the layer."""
    out = tmp_path_factory.mktemp("control") / "run"
    assert main.main(["--cfg", str(ROOT / "configs" / "synthetic" / "r18_baseline_dlt.yaml"), "OUTPUT_DIR", str(out),
                      *TINY]) == 0
    return out


def test_the_script_reports_by_visibility_and_by_what_the_layer_did(trained_epipolar_run, control_run, tmp_path,
                                                                    capsys):
    control = control_run
    out = tmp_path / "diagnostics.json"
    assert fusion_diagnostics([str(trained_epipolar_run), "--control", str(control), "--every", "2",
                               "--out", str(out)]) == 0
    assert "visible in reference, visible in source" in capsys.readouterr().out
    rows = json.loads(out.read_text())["distances_feature_px"]
    # 4 test samples of 4 views x 17 joints x 1 source (the nearest): every usable joint-view-source in one visibility group
    by_visibility = sum(row["expected"]["count"] for name, row in rows.items() if "in source" in name)
    by_outcome = sum(row["expected"]["count"] for name, row in rows.items() if "(2D against the control)" in name)
    assert 0 < by_visibility == by_outcome <= 4 * 4 * 17
    assert all(np.isfinite(row["expected"]["median_px"]) for row in rows.values() if row["expected"]["count"])


def test_the_script_refuses_a_run_without_the_layer_and_a_bad_every(control_run, tmp_path, capsys):
    assert fusion_diagnostics([str(control_run)]) == 2
    assert "the run has no epipolar layer" in capsys.readouterr().err
    assert fusion_diagnostics([str(tmp_path / "none")]) == 2
    assert "config.yaml' does not exist" in capsys.readouterr().err
    assert fusion_diagnostics([str(tmp_path), "--every", "0"]) == 2
    assert "--every must be a positive integer" in capsys.readouterr().err
