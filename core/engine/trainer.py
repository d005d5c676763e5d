"""The training loop: optimiser steps with optional AMP and gradient clipping, periodic logging,
TensorBoard scalars, per-epoch LR schedule, periodic (the newest few kept, see ``Checkpointer.save_periodic``)
and final checkpoints, and resumption.

The model is a pipeline (``modeling.pipelines.base.Pipeline``): ``model(batch, **truth_inputs(batch))`` returns an
outputs dict
and ``model.losses(outputs, batch)`` a dict of named scalar losses whose sum is minimised;
``model.start_epoch(epoch)`` is called before each epoch (stage-wise training, e.g. ERD).

With a ``validate`` callable (the validation split's score, lower is better) every epoch is scored and
the best one is also saved as ``model_best.pth``; the best score travels in the checkpoints, so a
resumed run keeps comparing against it.
"""
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.distributed as dist
from tqdm import tqdm

from core.batch import move_batch
from core.engine.checkpoint import Checkpointer, unwrap
from core.engine.logger import TensorBoard

logger = logging.getLogger("epipose")


@dataclass
class TrainSettings:
    max_epochs: int
    grad_clip: float = 0.0
    amp: bool = False
    log_period: int = 50
    checkpoint_period: int = 1
    seed: int = 0
    rank: int = 0            # DDP: this process's rank (dropout masks differ between ranks)
    amp_dtype: str = "float16"


BEST = "model_best"
RANK_SEED_STRIDE = 100_003


class Trainer:
    def __init__(self, model, optimizer, scheduler, checkpointer: Checkpointer, tensorboard: TensorBoard,
                 settings: TrainSettings, device: torch.device, validate: Optional[Callable[[], float]] = None):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.checkpointer = checkpointer
        self.tb = tensorboard
        self.settings = settings
        self.device = device
        self.use_amp = settings.amp and device.type == "cuda"
        self.amp_dtype = getattr(torch, settings.amp_dtype)
        # bfloat16 has float32's range: no loss scaling
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.validate = validate

    def train(self, train_loader, start_epoch: int = 0, start_iteration: int = 0, best: Optional[dict] = None) -> int:
        """Train from ``start_epoch`` to ``max_epochs``; returns the iteration count. ``best``: the resumed
        checkpoint's record of the best validated epoch."""
        s = self.settings
        iteration = start_iteration
        best = dict(best or {"score": math.inf, "epoch": 0})
        if start_epoch >= s.max_epochs:
            logger.info("training already finished (epoch %d of %d)", start_epoch, s.max_epochs)
            return iteration
        for epoch in range(start_epoch, s.max_epochs):
            if hasattr(train_loader.sampler, "set_epoch"):
                train_loader.sampler.set_epoch(epoch)
            # Reseeding per epoch makes a resumed run draw the same dropout masks and shuffles
            # as an uninterrupted one.
            torch.manual_seed(s.seed + epoch + RANK_SEED_STRIDE * s.rank)
            unwrap(self.model).start_epoch(epoch)
            self.model.train()
            started = time.perf_counter()
            # progress bars on terminals only (disable=None), so log files stay readable
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{s.max_epochs}", disable=None if s.rank == 0 else True,
                       leave=False, dynamic_ncols=True)
            running = 0.0
            for step, batch in enumerate(bar):
                losses = self._step(batch)
                iteration += 1
                total = sum(losses.values()).item()
                running += total
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{total:.4g}", refresh=False)
                if iteration % s.log_period == 0:
                    lr = self.optimizer.param_groups[0]["lr"]
                    logger.info("epoch %d iter %d  loss %.5g  (%s)  lr %.3g", epoch + 1, iteration, total,
                                ", ".join(f"{k} {v.item():.4g}" for k, v in losses.items()), lr)
                    self.tb.scalars({f"train/{k}": v.item() for k, v in losses.items()}, iteration)
                    self.tb.scalars({"train/loss": total, "train/lr": lr}, iteration)
            bar.close()
            num_steps = max(1, step + 1)
            logger.info("epoch %d/%d done: mean loss %.5g, %.1f s", epoch + 1, s.max_epochs,
                        running / num_steps, time.perf_counter() - started)
            self.tb.scalars({"train/epoch_loss": running / num_steps}, epoch + 1)
            self.scheduler.step()
            improved = False
            if self.validate is not None:
                score = self.validate()
                improved = score < best["score"]
                if improved:
                    best = {"score": score, "epoch": epoch + 1}
                logger.info("epoch %d validation MPJPE %.2f mm (best %.2f mm, epoch %d)", epoch + 1, score,
                            best["score"], best["epoch"])
                self.tb.scalars({"val/mpjpe": score}, epoch + 1)
            extra = {"best": best} if self.validate is not None else None
            if epoch + 1 == s.max_epochs:
                self.checkpointer.save_final(epoch + 1, iteration, extra)
            elif (epoch + 1) % s.checkpoint_period == 0:
                self.checkpointer.save_periodic(epoch + 1, iteration, extra)
            if improved:
                self.checkpointer.save(BEST, epoch + 1, iteration, extra, pointer=False)
        return iteration

    def _step(self, batch):
        batch = move_batch(batch, self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            pipeline = unwrap(self.model)
            outputs = self.model(batch, **pipeline.truth_inputs(batch))
            losses = pipeline.losses(outputs, batch)
        total = sum(losses.values())
        finite = torch.isfinite(total.detach()).to(torch.int32)
        if dist.is_initialized():  # every rank stops together (one alone would leave the others waiting)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not finite:
            raise FloatingPointError("training loss is not finite (on this process or another): "
                                     + ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items()))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.settings.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {k: v.detach() for k, v in losses.items()}
