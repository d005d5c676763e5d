"""Checkpoints: atomic writes, a ``last_checkpoint`` pointer, safe and strict loading.

A checkpoint is a dict of tensors and plain values (``model``, ``optimizer``, ``scheduler``, ``scaler``,
``epoch``, ``iteration``, ``config`` as YAML text, ``format_version``) so that it loads with
``torch.load(..., weights_only=True)``. Files are written to a temporary name in the same folder
and renamed, so a run killed mid-write never leaves a half-written checkpoint behind.
"""
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from core.io import atomic_write, write_text_atomic

FORMAT_VERSION = 1
POINTER = "last_checkpoint"

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
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"checkpoint file '{path}' cannot be read: {err}") from None
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"checkpoint file '{path}' holds no 'model' state dict")
    return data


class Checkpointer:
    """Saves and restores the training state in ``save_dir``."""

    def __init__(self, save_dir: str, model: nn.Module, optimizer=None, scheduler=None, config_text: str = "",
                 scaler=None, writes: bool = True, world_size: int = 1):
        self.writes = writes  # False on DDP ranks other than 0: they read checkpoints but never write them
        self.world_size = world_size  # processes of the run (saved, so that a resumption can compare)
        self.save_dir = Path(save_dir)
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler  # AMP GradScaler
        self.config_text = config_text

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

    def last_checkpoint(self) -> Optional[Path]:
        pointer = self.save_dir / POINTER
        if not pointer.is_file():
            return None
        path = self.save_dir / pointer.read_text().strip()
        return path if path.is_file() else None

    def resume(self) -> Dict[str, Any]:
        """Restore model, optimizer, scheduler and AMP scaler from the last checkpoint; {} when there is none."""
        path = self.last_checkpoint()
        if path is None:
            return {}
        data = read_checkpoint(str(path))
        load_state_strict(self.model, data["model"], str(path))
        for key, part in self._training_state().items():
            if part is not None and key in data:
                part.load_state_dict(data[key])
        logger.info("resumed from %s (epoch %d)", path, data.get("epoch", 0))
        return data

    def load_weights(self, path: str, new_modules: Tuple[str, ...] = ()) -> str:
        """Load model weights only (``WEIGHTS``: testing or fine-tuning); modules named in ``new_modules``
        may be absent from the checkpoint (see ``load_state_strict``). Returns "<path> (epoch N)"."""
        data = read_checkpoint(path)
        kept = load_state_strict(self.model, data["model"], path, new_modules)
        logger.info("loaded weights from %s", path)
        if kept:
            logger.info("not in the checkpoint, kept at their initialisation: %s (%d tensors)",
                        ", ".join(sorted({k.split(".", 1)[0] for k in kept})), len(kept))
        return f"{path} (epoch {data.get('epoch', '?')})"
