"""Checkpoints: atomic writes, a ``last_checkpoint`` pointer, bounded periodic checkpoints, safe and strict loading.

A checkpoint is a dict of tensors and plain values (``model``, ``optimizer``, ``scheduler``, ``scaler``,
``epoch``, ``iteration``, ``config`` as YAML text, ``format_version``) so that it loads with
``torch.load(..., weights_only=True)``. Files are written to a temporary name in the same folder
and renamed, so a run killed mid-write never leaves a half-written checkpoint behind. Of the periodic
checkpoints (``model_epochNNNN.pth``) only the newest ``keep`` are kept: older ones are deleted once a newer one
is written and the pointer names it.
"""
import logging
import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from core.io import atomic_write, write_text_atomic

FORMAT_VERSION = 1
POINTER = "last_checkpoint"
PERIODIC = re.compile(r"^model_epoch(\d+)\.pth$")

logger = logging.getLogger("epipose")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model)


def load_state_strict(model: nn.Module, state: Dict[str, torch.Tensor], source: str,
                      new_modules: Tuple[str, ...] = ()) -> List[str]:
    """Load a state dict, accepting DDP's ``module.`` prefix; any mismatch is an error listing the keys,
    except keys of the modules named in ``new_modules`` that the checkpoint lacks: they keep their
    initialisation. Returns those keys. Modules' extra states (``get_extra_state``, e.g. per-frame training
    weights whose size is the dataset's) are loaded as they are."""
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    model = unwrap(model)
    own = model.state_dict()
    kept = sorted(k for k in set(own) - set(state) if k.split(".", 1)[0] in new_modules)
    missing = sorted(set(own) - set(state) - set(kept))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                        for k in set(own) & set(state)
                        if isinstance(own[k], torch.Tensor) and own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{title}: {shown}")
        raise CheckpointError(f"checkpoint '{source}' does not fit the model: " + "; ".join(parts))
    try:
        model.load_state_dict(state, strict=not kept)
    except ValueError as err:  # a module's extra state that refuses the checkpoint's (e.g. another layer form)
        raise CheckpointError(f"checkpoint '{source}' does not fit the model: {err}") from None
    return kept


def read_checkpoint(path: str) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file '{path}' does not exist")
    try:
        handle = open(path, "rb")  # one open file: a checkpoint pruned meanwhile by a training run is still read whole
    except OSError as err:
        raise CheckpointError(f"checkpoint file '{path}' cannot be read: {err.strerror}") from None
    try:
        with handle, warnings.catch_warnings():  # a pickle of another protocol is no checkpoint: said below
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            data = torch.load(handle, map_location="cpu", weights_only=True)
    except OSError as err:
        raise CheckpointError(f"checkpoint file '{path}' cannot be read: {err.strerror or err}") from None
    except Exception:  # torch raises many types (with advice to load unsafely) for foreign, corrupt or unsafe files
        raise CheckpointError(f"'{path}' is not an EpiPose checkpoint: torch.load(weights_only=True) cannot read it "
                              "(not written by torch.save, truncated, or holding objects other than tensors and plain "
                              "values)") from None
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"'{path}' is not an EpiPose checkpoint: it holds no 'model' state dict (a checkpoint "
                              "that main.py saved expected)")
    return data


def load_weights(model: nn.Module, path: str, new_modules: Tuple[str, ...] = ()) -> Tuple[str, List[str]]:
    """Load the model weights of a checkpoint (``WEIGHTS``: testing or fine-tuning), nothing else; modules named
    in ``new_modules`` may be absent from it (see ``load_state_strict``). Returns ("<path> (epoch N)", the keys
    kept at their initialisation) for ``log_loaded``, so that it can run before the log is set up."""
    data = read_checkpoint(path)
    kept = load_state_strict(model, data["model"], path, new_modules)
    return f"{path} (epoch {data.get('epoch', '?')})", kept


def log_loaded(tested: str, kept: List[str]) -> None:
    logger.info("loaded weights from %s", tested)
    if kept:
        logger.info("not in the checkpoint, kept at their initialisation: %s (%d tensors)",
                    ", ".join(sorted({k.split(".", 1)[0] for k in kept})), len(kept))


def last_checkpoint(folder) -> Optional[Path]:
    """The checkpoint that ``folder``'s pointer names (the one a run there resumes from), if it exists."""
    pointer = Path(folder) / POINTER
    if not pointer.is_file():
        return None
    path = Path(folder) / pointer.read_text().strip()
    return path if path.is_file() else None


class Checkpointer:
    """Saves and restores the training state in ``save_dir``."""

    def __init__(self, save_dir: str, model: nn.Module, optimizer=None, scheduler=None, config_text: str = "",
                 scaler=None, writes: bool = True, world_size: int = 1, keep: int = 0):
        self.writes = writes  # False on DDP ranks other than 0: they read checkpoints but never write them
        self.world_size = world_size  # processes of the run (saved, so that a resumption can compare)
        self.save_dir = Path(save_dir)
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler  # AMP GradScaler
        self.config_text = config_text
        self.keep = keep  # periodic checkpoints kept, the newest (SOLVER.KEEP_CHECKPOINTS); 0 = all

    def _training_state(self):
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    def save(self, name: str, epoch: int, iteration: int, extra: Optional[Dict[str, Any]] = None,
             pointer: bool = True) -> Path:
        """Write ``name.pth`` (with the plain values of ``extra``); ``pointer``: make it the one to resume from."""
        if not self.writes:
            return self.save_dir / f"{name}.pth"
        data = {
            **(extra or {}),
            "model": unwrap(self.model).state_dict(),
            "epoch": epoch,
            "iteration": iteration,
            "config": self.config_text,
            "format_version": FORMAT_VERSION,
            "world_size": self.world_size,
        }
        for key, part in self._training_state().items():
            if part is not None:
                data[key] = part.state_dict()
        path = atomic_write(self.save_dir / f"{name}.pth", lambda tmp: torch.save(data, tmp))
        if pointer:
            write_text_atomic(path.name, self.save_dir / POINTER)
        logger.info("saved checkpoint %s", path)
        return path

    def save_periodic(self, epoch: int, iteration: int, extra: Optional[Dict[str, Any]] = None) -> Path:
        """Write ``model_epochNNNN.pth`` and point to it, then delete the older periodic checkpoints beyond the
        newest ``keep`` (a run killed in between leaves one too many, deleted at the next save)."""
        path = self.save(f"model_epoch{epoch:04d}", epoch, iteration, extra)
        self.prune(epoch, self.keep - 1)
        return path

    def save_final(self, epoch: int, iteration: int, extra: Optional[Dict[str, Any]] = None) -> Path:
        """Write ``model_final.pth`` and point to it; the newest ``keep`` periodic checkpoints stay beside it."""
        path = self.save("model_final", epoch, iteration, extra)
        self.prune(epoch + 1, self.keep)
        return path

    def prune(self, epoch: int, kept: int) -> None:
        """Delete the periodic checkpoints of epochs before ``epoch`` but the newest ``kept`` of them (nothing with
        ``keep`` 0); a checkpoint of ``epoch`` or later, such as the one just written, is never deleted."""
        if not self.writes or self.keep <= 0:
            return
        older = [path for number, path in self.periodic_checkpoints() if number < epoch]
        for old in older[:max(len(older) - kept, 0)]:
            old.unlink()
            logger.info("deleted checkpoint %s (SOLVER.KEEP_CHECKPOINTS %d)", old, self.keep)

    def periodic_checkpoints(self) -> List[Tuple[int, Path]]:
        """(epoch, path) of the ``model_epochNNNN.pth`` files of ``save_dir``, oldest first."""
        return sorted((int(m.group(1)), p) for p in self.save_dir.glob("model_epoch*.pth") if (m := PERIODIC.match(p.name)))

    def resume(self) -> Dict[str, Any]:
        """Restore model, optimizer, scheduler and AMP scaler from the last checkpoint; {} when there is none."""
        path = last_checkpoint(self.save_dir)
        if path is None:
            return {}
        data = read_checkpoint(str(path))
        load_state_strict(self.model, data["model"], str(path))
        for key, part in self._training_state().items():
            if part is not None and key in data:
                part.load_state_dict(data[key])
        logger.info("resumed from %s (epoch %d)", path, data.get("epoch", 0))
        return data
