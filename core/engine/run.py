"""One run of ``main.py``: validate and build everything, then train, test and write the outputs.

Everything that can be checked is checked before ``OUTPUT_DIR`` is touched: the config, the
registry names, the data and the model are built first, so a mistake leaves nothing behind.
"""
import json
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from core.config import ConfigError, load_config
from core.engine.checkpoint import Checkpointer, CheckpointError, unwrap
from core.engine.logger import TensorBoard, setup_logger
from core.engine.preview import preview_sample
from core.engine.solver import build_optimizer, build_scheduler
from core.engine.evaluator import evaluate
from core.engine.trainer import Trainer, TrainSettings
from core.registry import RegistryError
from core.vis import write_png
from datasets import DatasetError, build_dataset
from datasets.collate import collate_samples
from modeling.pipeline import PipelineConfigError, build_pipeline

logger = logging.getLogger("epipose")


class UsageError(Exception):
    """A mistake of the user's (config, names, files) reported as one line, exit status 2."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"DEVICE is '{name}' but no CUDA device is available; use DEVICE cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"DEVICE '{name}' is not a device; expected auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int, device: torch.device):
    # A one-replica DistributedSampler gives an epoch-seeded shuffle (set_epoch), so resumed runs see the
    # same order as uninterrupted ones.
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed, drop_last=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_samples, pin_memory=device.type == "cuda",
                      persistent_workers=num_workers > 0, worker_init_fn=_seed_worker,
                      drop_last=shuffle and len(dataset) > batch_size)


def prepare_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"OUTPUT_DIR '{path}' is not writable: {err.strerror}") from None


def write_json_atomic(data, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def save_npz_atomic(arrays, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def run(config_file: str, overrides) -> None:
    try:
        cfg = load_config(config_file, overrides)
        if cfg.WEIGHTS and not Path(cfg.WEIGHTS).is_file():
            raise ConfigError(f"WEIGHTS: checkpoint file '{cfg.WEIGHTS}' does not exist")
        device = resolve_device(cfg.DEVICE)
        seed_everything(cfg.SEED)
        model = build_pipeline(cfg)
        train_set = build_dataset(cfg, "train") if cfg.DOTRAIN and model.trainable else None
        test_set = build_dataset(cfg, "test") if cfg.DOTEST else None
    except (ConfigError, RegistryError, PipelineConfigError, DatasetError) as err:
        raise UsageError(str(err)) from None
    if cfg.DETERMINISTIC:
        torch.use_deterministic_algorithms(True)

    output_dir = Path(cfg.OUTPUT_DIR)
    prepare_output_dir(output_dir)
    (output_dir / "config.yaml").write_text(cfg.dump())
    setup_logger(str(output_dir))
    logger.info("config %s -> %s (device %s)", config_file, output_dir, device)
    tensorboard = TensorBoard(str(output_dir / "tensorboard"))
    model.to(device)
    checkpointer = Checkpointer(str(output_dir), model, config_text=cfg.dump())
    try:
        if cfg.WEIGHTS:
            checkpointer.load_weights(cfg.WEIGHTS)
        if train_set is not None:
            _train(cfg, model, train_set, checkpointer, tensorboard, device)
        elif cfg.DOTRAIN:
            logger.info("the pipeline has no trainable parameters: skipping training")
        if test_set is not None:
            _test(cfg, model, test_set, tensorboard, device, output_dir)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    finally:
        tensorboard.close()


def _train(cfg, model, train_set, checkpointer: Checkpointer, tensorboard, device) -> None:
    s = cfg.SOLVER
    loader = make_loader(train_set, s.BATCH_SIZE, True, cfg.DATASETS.NUM_WORKERS, cfg.SEED, device)
    optimizer = build_optimizer(model.parameters(), s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY, s.MOMENTUM)
    scheduler = build_scheduler(optimizer, s.LR_SCHEDULER, s.GAMMA, s.STEPS, s.MAX_EPOCHS)
    checkpointer.optimizer, checkpointer.scheduler = optimizer, scheduler
    state = checkpointer.resume()
    if not state:
        model.prepare(make_loader(train_set, cfg.TEST.BATCH_SIZE, False, cfg.DATASETS.NUM_WORKERS, cfg.SEED, device))
    logger.info("training on %d samples, %d iterations per epoch", len(train_set), len(loader))
    trainer = Trainer(model, optimizer, scheduler, checkpointer, tensorboard,
                      TrainSettings(max_epochs=s.MAX_EPOCHS, grad_clip=s.GRAD_CLIP, amp=s.AMP,
                                    log_period=s.LOG_PERIOD, checkpoint_period=s.CHECKPOINT_PERIOD,
                                    seed=cfg.SEED), device)
    trainer.train(loader, start_epoch=state.get("epoch", 0), start_iteration=state.get("iteration", 0))


def _test(cfg, model, test_set, tensorboard, device, output_dir: Path) -> None:
    loader = make_loader(test_set, cfg.TEST.BATCH_SIZE, False, cfg.DATASETS.NUM_WORKERS, cfg.SEED, device)
    logger.info("testing on %d samples", len(test_set))
    summary, predictions = evaluate(model, loader, device)
    write_json_atomic(summary, output_dir / "metrics.json")
    if cfg.TEST.SAVE_PREDICTIONS:
        save_npz_atomic(predictions, output_dir / "predictions.npz")
    for line in format_summary(summary):
        logger.info(line)
    tensorboard.scalars({f"test/{k}": v["action_avg"] for k, v in summary.items()
                         if isinstance(v, dict) and v.get("action_avg") is not None}, 0)
    logger.info("wrote %s", output_dir / "metrics.json")
    if cfg.VIS.PREVIEW_SAMPLES > 0:
        _write_previews(test_set, predictions, unwrap(model).predicts_absolute, cfg.VIS.PREVIEW_SAMPLES,
                        output_dir / "preview", tensorboard)


def _write_previews(test_set, predictions, absolute: bool, count: int, folder: Path, tensorboard) -> None:
    """Pictures of ``count`` test samples spread over the test set (legend: green = exact 2D, blue/red =
    2D input (left/right), yellow = projected 3D prediction)."""
    folder.mkdir(exist_ok=True)
    for index in np.linspace(0, len(test_set) - 1, count).round().astype(int):
        sample = test_set[index]
        meta = sample["meta"]
        title = f"{meta['sequence']} f{meta['frame']}"
        picture = preview_sample(sample, predictions["pred_3d"][index] if absolute else None, title)
        write_png(folder / f"sample_{index:06d}.png", picture)
        tensorboard.image(f"preview/sample_{index:06d}", picture, 0)


def format_summary(summary) -> list:
    lines = [f"{'metric':<28}{'action avg':>12}{'frame avg':>12}"]
    for key, value in summary.items():
        if isinstance(value, dict) and "action_avg" in value:
            a, f = value["action_avg"], value["frame_avg"]
            lines.append(f"{key:<28}{'n/a' if a is None else f'{a:.2f}':>12}{'n/a' if f is None else f'{f:.2f}':>12}")
    lines += [f"{k}: {v}" for k, v in summary.items() if not isinstance(v, dict)]
    return lines
