"""Where a run writes and what it leaves there: the output folder of a run (``OUTPUT_DIR`` or, for a run that
does not train beside a training run's checkpoints, a subfolder of its own), the disk space its checkpoints need,
and the outputs an earlier evaluation of the same configuration left that this one replaces."""
import logging
import shutil
from pathlib import Path
from typing import Dict, Tuple

import torch

from core.config import ConfigError
from core.engine.checkpoint import last_checkpoint

logger = logging.getLogger("epipose")


def check_free_space(cfg, model, training: bool) -> None:
    """Refuse to start when the disk of OUTPUT_DIR cannot hold the run's checkpoints (weights and two Adam
    moments: the periodic ones kept (SOLVER.KEEP_CHECKPOINTS of the one per SOLVER.CHECKPOINT_PERIOD epochs)
    plus the best and the final, one more while a checkpoint is written) and the outputs."""
    path = Path(cfg.OUTPUT_DIR)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))
    periodic = -(-cfg.SOLVER.MAX_EPOCHS // cfg.SOLVER.CHECKPOINT_PERIOD)
    if cfg.SOLVER.KEEP_CHECKPOINTS > 0:
        periodic = min(periodic, cfg.SOLVER.KEEP_CHECKPOINTS)
    checkpoints = periodic + 3 if training else 0
    needed = 3 * size * checkpoints + 64 * 2**20  # + logs, predictions, pictures
    existing = next(p for p in (path, *path.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise ConfigError(f"OUTPUT_DIR '{path}': {free / 2**20:.0f} MB free on its disk, about {needed / 2**20:.0f} MB "
                          "needed for the checkpoints and outputs; free space or choose another OUTPUT_DIR")


def output_folder(cfg, trains: bool, weights: str) -> Path:
    """Where the run writes: OUTPUT_DIR, except for a run that does not train in an OUTPUT_DIR holding a training
    run's checkpoints. That one writes into a subfolder of its own, named after what it does and the weights it
    tests: ``eval_model_best`` for a test of .../model_best.pth, ``video_model_best`` for videos alone (DOTEST
    False), ``eval_as_built`` without weights; a run of another configuration than the one a subfolder holds takes
    the next free name (``eval_model_best_2``, ...). The training run's config.yaml (which reproduces it),
    metrics, log and TensorBoard stay as training left them, and so do other evaluations."""
    run_dir = Path(cfg.OUTPUT_DIR)
    if trains or last_checkpoint(run_dir) is None:
        return run_dir
    kind = "video" if cfg.VIS.VIDEO and not cfg.DOTEST else "eval"
    name = f"{kind}_{Path(weights).stem if weights else 'as_built'}"
    folder, number, config = run_dir / name, 2, cfg.dump()
    while (folder / "config.yaml").is_file() and (folder / "config.yaml").read_text() != config:
        folder, number = run_dir / f"{name}_{number}", number + 1
    return folder


def _identity(path: Path) -> Tuple[int, int, int]:
    """Changes when the file is replaced (atomic writes) or rewritten."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


# what a run writes into its folder and may replace there (log.txt aside: each run appends to it)
RUN_OUTPUTS = ("config.yaml", "metrics.json", "predictions.npz", "preview/*.png", "videos/*.mp4", "tensorboard/events.*")


def earlier_outputs(folder: Path) -> Dict[Path, Tuple[int, int, int]]:
    """The outputs (``RUN_OUTPUTS``) that an earlier run of the same configuration left in an evaluation subfolder
    (``output_folder``), with their ``_identity``; any other file there is not the toolbox's and stays."""
    return {p: _identity(p) for pattern in RUN_OUTPUTS for p in folder.glob(pattern) if p.is_file()}


def remove_earlier_outputs(earlier: Dict[Path, Tuple[int, int, int]]) -> None:
    """Once a run has written all its outputs: delete the files of ``earlier`` (``earlier_outputs``) that it did not
    rewrite (the earlier TensorBoard events, pictures of other samples, videos of a run that made them...) and
    the folders they leave empty, so that an evaluation subfolder holds one run's outputs, those its config.yaml
    describes."""
    removed = [path for path, identity in earlier.items() if path.is_file() and _identity(path) == identity]
    for path in removed:
        path.unlink()
        logger.info("removed %s, left by an earlier evaluation of the same configuration", path)
    for folder in sorted({p.parent for p in removed}, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
