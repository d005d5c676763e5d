"""The pipeline base class: the end-to-end models that ``main.py`` trains and tests.

A pipeline's ``forward`` maps a batch of the shared form (``core.sample_schema``) to predictions, never reading the
ground truth, so it runs on the inputs alone (2D and cameras, or images and cameras): an outputs dict holding at
least ``pred_3d``, (B, J, 3) millimetres for each sample's target (centre) frame. ``targets(batch)`` gives the truth
it is scored and trained against: at least ``target_3d``, in the same frame of reference as ``pred_3d``, so the
evaluator compares them without knowing the method (and ``target_2d`` for pipelines that predict 2D).
``losses(outputs, batch)`` reads its targets through ``targets``. ``predicts_absolute`` says whether
``pred_3d`` is absolute (world frame) or root-relative. Joints are those of the pipeline's ``skeleton``
(``DATASETS.SKELETON``, which ``from_config`` passes on).

A protocol may hand a method a piece of the truth as an input (ERD's true pelvis): ``truth_inputs(batch)`` reads it
and returns the keyword arguments of ``forward`` that carry it (none by default), so the engine calls
``model(batch, **model.truth_inputs(batch))`` and ``forward`` itself still reads no ground truth.
"""
from typing import Dict, Tuple

import torch
from torch import nn

from core.skeleton import H36M17, Skeleton


class PipelineConfigError(ValueError):
    """The configured pieces do not fit together."""


class Pipeline(nn.Module):
    """Subclasses register in ``core.registry.PIPELINES`` under their MODEL.PIPELINE name and build from a config
    with ``from_config(cfg)``, which reads their keys and calls the constructor with plain arguments.

    ``parts`` says (for errors) which MODEL.*.NAME keys make the pipeline. ``pretrained_parts`` maps child modules
    that start from an earlier run's checkpoint to (the config key of that checkpoint, the settings that run must
    share); the engine loads them (``core.engine.trained_run.load_pretrained_parts``), not ``from_config``."""

    predicts_absolute = False
    partially_trained = False  # some trainable parameters get no gradient in some steps (DDP must look for them)
    parts = ""
    pretrained_parts: Dict[str, Tuple[str, str]] = {}

    def __init__(self, skeleton: Skeleton = H36M17):
        super().__init__()
        self.skeleton = skeleton

    @classmethod
    def from_config(cls, cfg) -> "Pipeline":
        raise NotImplementedError(f"{cls.__name__} has no from_config")

    @property
    def insertable_modules(self) -> tuple:
        """Child modules that fine-tuning may add to a checkpoint's (they start at their initialisation)."""
        return ()

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def prepare(self, train_loader) -> None:
        """Fit data-dependent state (e.g. normalisation statistics) before training; default: nothing."""

    def start_epoch(self, epoch: int) -> None:
        """Called before each training epoch (0-based), also when resuming; default: nothing."""

    def truth_inputs(self, batch) -> Dict[str, torch.Tensor]:
        """The pieces of ground truth that the method's protocol takes as inputs, as keyword arguments of
        ``forward``; default: none."""
        return {}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no targets")

    def losses(self, outputs: Dict[str, torch.Tensor], batch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has nothing to train")
