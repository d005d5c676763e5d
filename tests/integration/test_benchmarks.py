"""The benchmark scripts still run (tiny settings; their figures are not checked here)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, args, expected", [
    ("benchmark_render.py", ["--size", "64", "--repeats", "1"], "views/s"),
    ("benchmark_triangulation.py", ["--batch", "4", "--repeats", "1"], "pts/s"),
    ("benchmark_epipolar.py", ["--channels", "8", "--size", "8", "--samples", "4", "--repeats", "1", "--warmup", "0"],
     "forward+backward"),
])
def test_benchmark_script_runs(script, args, expected):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
