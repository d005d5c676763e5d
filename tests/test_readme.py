"""The README is a short guide whose commands run from a fresh clone: its size, its links, and every main.py and
script command it states (configs and overrides load, scripts and their options exist). The demo's commands run
verbatim in tests/integration/test_make_demo_footage.py."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in (ROOT / "docs").glob("*.md")}


def commands(text: str):
    """The shell commands of the ```bash blocks, continuation lines joined and comments dropped."""
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                yield line


def main_commands():
    for line in commands(README):
        words = shlex.split(line.split("&&")[-1])
        if "main.py" in " ".join(words[:3]):
            yield words[words.index("--cfg") + 1], words[words.index("--cfg") + 2:]


def test_the_readme_is_a_short_guide_with_working_links():
    assert len(README.encode()) < 15_000
    for target in re.findall(r"\]\(([^)#\s]+)", README) + [f"docs/{t}" for d in DOCS.values()
                                                         for t in re.findall(r"\]\(([^)#/\s]+\.(?:md|jpg|png))", d)]:
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README or docs link to a missing file: {target}"


@pytest.mark.parametrize("config, overrides", list(main_commands()), ids=lambda x: str(x)[:60])
def test_every_main_command_of_the_readme_loads_its_config(config, overrides):
    if config.startswith("outs/"):
        pytest.skip("a run's own config.yaml, written by an earlier command")
    load_config(str(ROOT / config), overrides)


def test_the_readme_names_a_wrong_key_as_it_shows():
    with pytest.raises(ConfigError, match="unknown config key 'SOLVER.MAX_EPOCH'; closest valid keys: SOLVER.MAX_EPOCHS"):
        load_config(str(ROOT / "configs/synthetic/linear_lifter.yaml"), ["SOLVER.MAX_EPOCH", "2"])


@pytest.mark.slow
@pytest.mark.parametrize("line", [line for line in commands(README) if " scripts/" in line], ids=lambda x: x[:50])
def test_every_script_command_names_options_the_script_has(line):
    words = shlex.split(line.replace("$S", "shared"))
    script = ROOT / next(w for w in words if w.startswith("scripts/"))
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert usage.returncode == 0, usage.stderr
    for option in (w for w in words if w.startswith("--")):
        assert option in usage.stdout, f"{script.name} has no option {option}"
