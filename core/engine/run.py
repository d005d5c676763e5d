"""One run of ``main.py``: validate and build everything, then train, test and write the outputs.

Everything that can be checked is checked before ``OUTPUT_DIR`` is touched: the config, the
registry names, the data and the model are built first, so a mistake leaves nothing behind.
"""
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from core.config import ConfigError, config_differences, load_config
from core.engine.checkpoint import Checkpointer, CheckpointError, read_checkpoint, unwrap
from core.engine.distributed import (DistContext, barrier, cleanup, init_distributed, launched_world_size,
                                     process_device, shard)
from core.engine.logger import TensorBoard, setup_logger
from core.engine.preview import preview_sample
from core.engine.solver import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler
from core.engine.evaluator import GROUND_TRUTHS, evaluate, run_inference
from core.engine.sequence_video import choose_sequences, write_sequence_videos
from core.engine.trainer import BEST, RANK_SEED_STRIDE, Trainer, TrainSettings
from core.io import remove_stale_temporaries, save_npz_atomic, write_json_atomic, write_text_atomic
from core.registry import RegistryError
from core.skeleton import NUM_JOINTS
from core.video import VideoError
from core.vis import write_png
from datasets import DatasetError, build_dataset
from datasets.collate import collate_samples
from modeling.pipeline import PipelineConfigError, build_pipeline

logger = logging.getLogger("epipose")

# Keys that may change between a run and its resumption from OUTPUT_DIR (they do not change the model
# being trained): e.g. more epochs, another device, other test or picture settings.
RESUMABLE_CHANGES = ("SOLVER.MAX_EPOCHS", "SOLVER.LOG_PERIOD", "SOLVER.CHECKPOINT_PERIOD", "DOTRAIN", "DOTEST",
                     "DEVICE", "OUTPUT_DIR", "DATASETS.NUM_WORKERS", "TEST.BATCH_SIZE", "TEST.SAVE_PREDICTIONS",
                     "VIS.PREVIEW_SAMPLES", "VIS.VIDEO", "VIS.VIDEO_SEQUENCES", "VIS.VIDEO_FPS", "VIS.VIDEO_HEIGHT",
                     "MODEL.COMPILE", "MODEL.CHANNELS_LAST")


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


def make_loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int, device: torch.device,
                context: DistContext = DistContext()):
    """Training (``shuffle``): this rank's part of an epoch-seeded permutation (``DistributedSampler``; one
    replica without DDP); the loader's own generator seeds the workers without drawing from the global one,
    so resumed runs see the same order and dropout masks as uninterrupted ones. With N ranks each takes
    every N-th sample of the permutation, so their batches together are the single-process batch of
    BATCH_SIZE x N. Evaluation: the samples in order (see ``eval_loader`` for DDP)."""
    replicas, rank = (context.world_size, context.rank) if shuffle else (1, 0)
    sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    workers_seed = seed + RANK_SEED_STRIDE * rank  # the ranks' workers draw different augmentations
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_samples, pin_memory=device.type == "cuda",
                      persistent_workers=num_workers > 0, worker_init_fn=_seed_worker,
                      generator=torch.Generator().manual_seed(workers_seed),
                      drop_last=shuffle and len(sampler) > batch_size)


def eval_loader(cfg, dataset, device: torch.device, context: DistContext):
    """This rank's contiguous shard of an evaluation set (all of it without DDP), in order."""
    part = dataset if not context.enabled else Subset(dataset, list(shard(len(dataset), context)))
    return make_loader(part, cfg.TEST.BATCH_SIZE, False, cfg.DATASETS.NUM_WORKERS, cfg.SEED, device)


def check_solver(cfg) -> None:
    s = cfg.SOLVER
    if s.OPTIMIZER not in OPTIMIZERS:
        raise ConfigError(f"SOLVER.OPTIMIZER: unknown optimizer '{s.OPTIMIZER}'; expected one of {', '.join(OPTIMIZERS)}")
    if s.LR_SCHEDULER not in SCHEDULERS:
        raise ConfigError(f"SOLVER.LR_SCHEDULER: unknown scheduler '{s.LR_SCHEDULER}'; expected one of "
                          f"{', '.join(SCHEDULERS)}")
    for key in ("MAX_EPOCHS", "BATCH_SIZE", "LOG_PERIOD", "CHECKPOINT_PERIOD"):
        if getattr(s, key) < 1:
            raise ConfigError(f"SOLVER.{key} must be >= 1, got {getattr(s, key)}")
    if s.BASE_LR <= 0 or s.GRAD_CLIP < 0 or s.HALVING_PERIOD < 0:
        raise ConfigError(f"SOLVER.BASE_LR must be > 0, SOLVER.GRAD_CLIP >= 0 and SOLVER.HALVING_PERIOD >= 0, got "
                          f"{s.BASE_LR}, {s.GRAD_CLIP} and {s.HALVING_PERIOD}")
    if cfg.TEST.BATCH_SIZE < 1 or cfg.DATASETS.NUM_WORKERS < 0:
        raise ConfigError("TEST.BATCH_SIZE must be >= 1 and DATASETS.NUM_WORKERS >= 0")
    if cfg.VIS.VIDEO_FPS <= 0 or cfg.VIS.VIDEO_HEIGHT < 16 or cfg.VIS.VIDEO_SEQUENCES < 0:
        raise ConfigError(f"VIS.VIDEO_FPS must be > 0, VIS.VIDEO_HEIGHT >= 16 and VIS.VIDEO_SEQUENCES >= 0, got "
                          f"{cfg.VIS.VIDEO_FPS}, {cfg.VIS.VIDEO_HEIGHT} and {cfg.VIS.VIDEO_SEQUENCES}")
    if s.LR_SCALING not in ("none", "linear") or s.AMP_DTYPE not in ("float16", "bfloat16"):
        raise ConfigError(f"SOLVER.LR_SCALING must be none or linear and SOLVER.AMP_DTYPE float16 or bfloat16, got "
                          f"'{s.LR_SCALING}' and '{s.AMP_DTYPE}'")


def resume_point(cfg, model) -> Optional[Path]:
    """The checkpoint in OUTPUT_DIR that this run continues (training) or tests (``DOTRAIN False``
    without ``WEIGHTS``), after checking that it was made with the same configuration."""
    last = Checkpointer(cfg.OUTPUT_DIR, model).last_checkpoint()
    if last is None or (not cfg.DOTRAIN and cfg.WEIGHTS):
        return None
    try:
        old_config = read_checkpoint(str(last)).get("config", "")
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
    differences = config_differences(old_config, cfg, RESUMABLE_CHANGES)
    if differences:
        key, old, new = differences[0]
        raise ConfigError(f"OUTPUT_DIR '{cfg.OUTPUT_DIR}' holds a checkpoint of another configuration ({key}: "
                          f"{old!r} there, {new!r} now, {len(differences)} difference(s) in all); choose another "
                          "OUTPUT_DIR, or delete that folder to start over")
    return last


def check_free_space(cfg, model, training: bool) -> None:
    """Refuse to start when the disk of OUTPUT_DIR cannot hold the run's checkpoints (weights and two Adam
    moments, one per SOLVER.CHECKPOINT_PERIOD epochs plus the best and the final, one more while a checkpoint
    is written) and the outputs."""
    path = Path(cfg.OUTPUT_DIR)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor))
    checkpoints = -(-cfg.SOLVER.MAX_EPOCHS // cfg.SOLVER.CHECKPOINT_PERIOD) + 3 if training else 0
    needed = 3 * size * checkpoints + 64 * 2**20  # + logs, predictions, pictures
    existing = next(p for p in (path, *path.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise ConfigError(f"OUTPUT_DIR '{path}': {free / 2**20:.0f} MB free on its disk, about {needed / 2**20:.0f} MB "
                          "needed for the checkpoints and outputs; free space or choose another OUTPUT_DIR")


def prepare_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temporaries(path)
        if stale:
            logger.warning("removed %d temporary file(s) of a killed run: %s", len(stale), ", ".join(stale))
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"OUTPUT_DIR '{path}' is not writable: {err.strerror}") from None


def run(config_file: str, overrides) -> None:
    try:
        cfg = load_config(config_file, overrides)
        if cfg.WEIGHTS and not Path(cfg.WEIGHTS).is_file():
            raise ConfigError(f"WEIGHTS: checkpoint file '{cfg.WEIGHTS}' does not exist")
        check_solver(cfg)
        device = resolve_device(cfg.DEVICE)
        if cfg.SOLVER.SYNC_BN and device.type != "cuda" and launched_world_size() > 1:
            raise ConfigError("SOLVER.SYNC_BN needs CUDA devices (PyTorch's SyncBatchNorm works on GPUs only); on "
                              "the CPU each process normalises over its own batch: set SOLVER.SYNC_BN False")
        context = init_distributed(device)
        device = process_device(device, context)
        seed_everything(cfg.SEED)
        model = build_pipeline(cfg)
        if cfg.TEST.GT_3D not in GROUND_TRUTHS:
            raise ConfigError(f"TEST.GT_3D must be one of {', '.join(GROUND_TRUTHS)}, got '{cfg.TEST.GT_3D}'")
        if cfg.TEST.GT_3D == "triangulated" and (not model.predicts_absolute or cfg.DATASETS.VIEWS != "all"):
            raise ConfigError("TEST.GT_3D triangulated compares world 3D with the DLT of the true 2D of every view: "
                              "it needs a triangulation or image pipeline and DATASETS.VIEWS all")
        if cfg.MODEL.CHANNELS_LAST and not _backbones(model):
            raise ConfigError("MODEL.CHANNELS_LAST is for image pipelines (MODEL.BACKBONE); this one has no backbone")
        resume_from = resume_point(cfg, model) if model.trainable else None
        if model.trainable and (cfg.DOTEST or cfg.VIS.VIDEO) and not cfg.DOTRAIN and not cfg.WEIGHTS and \
                resume_from is None:
            raise ConfigError("DOTRAIN is False but the pipeline has trainable parameters and no weights: set WEIGHTS "
                              "to a checkpoint (or train first into OUTPUT_DIR)")
        train_set = build_dataset(cfg, "train") if cfg.DOTRAIN and model.trainable else None
        val_set = build_dataset(cfg, "val") if train_set is not None and cfg.DATASETS.VAL_SUBJECTS else None
        test_set = build_dataset(cfg, "test") if cfg.DOTEST or cfg.VIS.VIDEO else None
        check_free_space(cfg, model, train_set is not None)
    except (ConfigError, RegistryError, PipelineConfigError, DatasetError) as err:
        raise UsageError(str(err)) from None
    if cfg.DETERMINISTIC:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)

    output_dir = Path(cfg.OUTPUT_DIR)
    if context.is_main:
        prepare_output_dir(output_dir)
        write_text_atomic(cfg.dump(), output_dir / "config.yaml")
    barrier(context)
    setup_logger(str(output_dir) if context.is_main else None, logging.INFO if context.is_main else logging.WARNING)
    logger.info("config %s -> %s (device %s%s)", config_file, output_dir, device,
                f", {context.world_size} processes" if context.enabled else "")
    tensorboard = TensorBoard(str(output_dir / "tensorboard") if context.is_main else None)
    model.to(device)
    _speed_settings(cfg, model, device)
    checkpointer = Checkpointer(str(output_dir), model, config_text=cfg.dump(), writes=context.is_main,
                                world_size=context.world_size)
    try:
        tested = "the initial weights" if model.trainable else \
            "the MODEL.*.WEIGHTS loaded at build (all frozen)" if any(True for _ in model.parameters()) else \
            "none (parameter-free)"
        if cfg.WEIGHTS:  # fine-tuning may add layers that start as the identity; testing needs every weight
            tested = checkpointer.load_weights(cfg.WEIGHTS, unwrap(model).insertable_modules if cfg.DOTRAIN else ())
        elif resume_from is not None and not cfg.DOTRAIN:
            tested = checkpointer.load_weights(str(_best_or(output_dir, resume_from)))
        if train_set is not None:
            _train(cfg, model, train_set, val_set, checkpointer, tensorboard, device, context)
            barrier(context)  # rank 0 has written the final (and best) checkpoints
            tested = f"{output_dir / 'model_final.pth'} (epoch {cfg.SOLVER.MAX_EPOCHS})"
            if val_set is not None:
                tested = checkpointer.load_weights(str(output_dir / f"{BEST}.pth")) + ", best on validation"
        elif cfg.DOTRAIN:
            logger.info("the pipeline has no trainable parameters: skipping training")
        predictions = _test(cfg, model, test_set, tensorboard, device, output_dir, tested, context) \
            if cfg.DOTEST else None
        if cfg.VIS.VIDEO and context.is_main:
            _write_videos(cfg, model, test_set, predictions, device, output_dir / "videos")
    except (CheckpointError, VideoError) as err:
        raise UsageError(str(err)) from None
    finally:
        tensorboard.close()
        cleanup(context)


NETWORKS = ("backbone", "fusion", "lifter")  # the submodules MODEL.COMPILE compiles


def _backbones(model) -> list:
    return [m for m in model.modules() if hasattr(m, "channels_last")]


def use_channels_last(model) -> None:
    """MODEL.CHANNELS_LAST: the convolutions' weights and the backbones' input images in channels_last."""
    model.to(memory_format=torch.channels_last)
    for backbone in _backbones(model):
        backbone.channels_last = True


def compile_networks(model) -> list:
    """MODEL.COMPILE: ``torch.compile`` the networks (NETWORKS) in place, so the state dict keys stay the same;
    returns their names."""
    compiled = [name for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in NETWORKS]
    for name in compiled:
        model.get_submodule(name).compile()
    return compiled


def _speed_settings(cfg, model, device: torch.device) -> None:
    """MODEL.CHANNELS_LAST and MODEL.COMPILE; SOLVER.AMP is the trainer's."""
    if cfg.MODEL.CHANNELS_LAST:
        use_channels_last(model)
    if cfg.MODEL.COMPILE:
        logger.info("torch.compile (device %s): %s; the first steps compile", device.type,
                    ", ".join(compile_networks(model)))
    if cfg.SOLVER.AMP and device.type != "cuda":
        logger.info("SOLVER.AMP is for CUDA devices: training in float32 on %s", device.type)


def _best_or(output_dir: Path, last: Path) -> Path:
    """The best validated checkpoint of OUTPUT_DIR when there is one, else ``last``."""
    best = output_dir / f"{BEST}.pth"
    if best.is_file():
        logger.info("testing the best validated checkpoint %s", best)
        return best
    return last


def _validator(cfg, model, val_set, device, context: DistContext):
    """The validation split's MPJPE (mm, action average; root-relative for root-relative pipelines)."""
    loader = eval_loader(cfg, val_set, device, context)
    key = "mpjpe_mm" if unwrap(model).predicts_absolute else "mpjpe_root_relative_mm"
    logger.info("validating every epoch on %d samples of subjects %s", len(val_set), list(cfg.DATASETS.VAL_SUBJECTS))
    return lambda: evaluate(model, loader, device, cfg.TEST.JDR_THRESHOLD, context,
                            cfg.TEST.GT_3D)[0][key]["action_avg"]


def _distributed(model, cfg, device: torch.device, context: DistContext):
    """The pipeline wrapped for DDP training (batch norm synchronised with SOLVER.SYNC_BN); unchanged alone."""
    if not context.enabled:
        return model
    if cfg.SOLVER.SYNC_BN:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # stage-wise (ERD) and partly frozen pipelines leave parameters without gradients in some steps
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=unwrap(model).partially_trained)


def _train(cfg, model, train_set, val_set, checkpointer: Checkpointer, tensorboard, device,
           context: DistContext) -> None:
    s = cfg.SOLVER
    loader = make_loader(train_set, s.BATCH_SIZE, True, cfg.DATASETS.NUM_WORKERS, cfg.SEED, device, context)
    model = _distributed(model, cfg, device, context)  # the checkpointer keeps the plain pipeline
    lr = s.BASE_LR * (context.world_size if s.LR_SCALING == "linear" else 1)
    if context.enabled:
        logger.info("DDP: %d processes x batch %d = global batch %d; learning rate %.3g (SOLVER.LR_SCALING %s)",
                    context.world_size, s.BATCH_SIZE, context.world_size * s.BATCH_SIZE, lr, s.LR_SCALING)
    optimizer = build_optimizer(model.parameters(), s.OPTIMIZER, lr, s.WEIGHT_DECAY, s.MOMENTUM)
    scheduler = build_scheduler(optimizer, s.LR_SCHEDULER, s.GAMMA, s.STEPS, s.MAX_EPOCHS, s.HALVING_PERIOD)
    trainer = Trainer(model, optimizer, scheduler, checkpointer, tensorboard,
                      TrainSettings(max_epochs=s.MAX_EPOCHS, grad_clip=s.GRAD_CLIP, amp=s.AMP,
                                    log_period=s.LOG_PERIOD, checkpoint_period=s.CHECKPOINT_PERIOD,
                                    seed=cfg.SEED, rank=context.rank, amp_dtype=s.AMP_DTYPE), device,
                      validate=_validator(cfg, model, val_set, device, context) if val_set is not None else None)
    checkpointer.optimizer, checkpointer.scheduler, checkpointer.scaler = optimizer, scheduler, trainer.scaler
    state = checkpointer.resume()
    if state and state.get("world_size", 1) != context.world_size:
        logger.warning("resuming a run of %d process(es) with %d: the batches (and with SOLVER.LR_SCALING linear the "
                       "scaled rate, kept in the optimizer state) differ from an uninterrupted run",
                       state.get("world_size", 1), context.world_size)
    if not state:  # every rank fits the same statistics on the whole training set
        unwrap(model).prepare(make_loader(train_set, cfg.TEST.BATCH_SIZE, False, cfg.DATASETS.NUM_WORKERS, cfg.SEED,
                                          device))
    logger.info("training on %d samples, %d iterations per epoch", len(train_set), len(loader))
    trainer.train(loader, start_epoch=state.get("epoch", 0), start_iteration=state.get("iteration", 0),
                  best=state.get("best"))


def _test(cfg, model, test_set, tensorboard, device, output_dir: Path, tested: str, context: DistContext) -> dict:
    logger.info("testing on %d samples", len(test_set))
    summary, predictions = evaluate(model, eval_loader(cfg, test_set, device, context), device,
                                    cfg.TEST.JDR_THRESHOLD, context, cfg.TEST.GT_3D)
    if not context.is_main:
        return predictions
    summary["checkpoint"] = tested
    if summary["mpjve_mm_per_frame"].get("num_frame_pairs") == 0:
        logger.warning("MPJVE has no consecutive test frames to compare (DATASETS.TEST_STRIDE %d, DATASETS.FRAMES "
                       "%d): set DATASETS.TEST_STRIDE 1 to measure it", cfg.DATASETS.TEST_STRIDE, cfg.DATASETS.FRAMES)
    write_json_atomic(summary, output_dir / "metrics.json")
    if cfg.TEST.SAVE_PREDICTIONS:  # with the kind of 3D, so that scripts/render_video.py can draw it
        save_npz_atomic({**predictions, "absolute": np.array(unwrap(model).predicts_absolute)},
                        output_dir / "predictions.npz")
    for line in format_summary(summary):
        logger.info(line)
    tensorboard.scalars({f"test/{k}": v["action_avg"] for k, v in summary.items()
                         if isinstance(v, dict) and v.get("action_avg") is not None}, 0)
    logger.info("wrote %s", output_dir / "metrics.json")
    if cfg.VIS.PREVIEW_SAMPLES > 0:
        _write_previews(test_set, predictions, unwrap(model).predicts_absolute, cfg.VIS.PREVIEW_SAMPLES,
                        output_dir / "preview", tensorboard)
    return predictions


def _write_videos(cfg, model, test_set, predictions: Optional[dict], device, folder: Path) -> None:
    """VIS.VIDEO: overlay videos of VIS.VIDEO_SEQUENCES test sequences, from the test's predictions or (without
    a test) from running the model on those sequences alone."""
    v = cfg.VIS
    chosen = choose_sequences(test_set.sample_sequences(), v.VIDEO_SEQUENCES)
    if predictions is None:
        rows = np.concatenate(list(chosen.values()))
        loader = make_loader(Subset(test_set, rows.tolist()), cfg.TEST.BATCH_SIZE, False, cfg.DATASETS.NUM_WORKERS,
                             cfg.SEED, device)
        logger.info("predicting %d samples of %d test sequences for the videos", len(rows), len(chosen))
        pred_3d = np.full((len(test_set),) + (NUM_JOINTS, 3), np.nan, dtype=np.float32)
        pred_3d[rows] = run_inference(model, loader, device)["pred_3d"]
    else:
        pred_3d = predictions["pred_3d"]
    write_sequence_videos(test_set, pred_3d, chosen, unwrap(model).predicts_absolute, folder, v.VIDEO_FPS,
                          v.VIDEO_HEIGHT)


def _write_previews(test_set, predictions, absolute: bool, count: int, folder: Path, tensorboard) -> None:
    """Pictures of ``count`` test samples spread over the test set (legend: green = exact 2D, blue/red =
    2D input (left/right), yellow = projected 3D prediction; root-relative predictions are placed at the true
    pelvis to project them and are also drawn in 3D beside the true pose, front and side)."""
    folder.mkdir(exist_ok=True)
    for index in np.linspace(0, len(test_set) - 1, count).round().astype(int):
        sample = test_set[index]
        meta = sample["meta"]
        title = f"{meta['sequence']} f{meta['frame']}"
        picture = preview_sample(sample, predictions["pred_3d"][index], title, absolute=absolute)
        write_png(folder / f"sample_{index:06d}.png", picture)
        tensorboard.image(f"preview/sample_{index:06d}", picture, 0)


def format_summary(summary) -> list:
    lines = [f"{'metric':<28}{'action avg':>12}{'frame avg':>12}"]
    for key, value in summary.items():
        if isinstance(value, dict) and "action_avg" in value:
            a, f = value["action_avg"], value["frame_avg"]
            lines.append(f"{key:<28}{'n/a' if a is None else f'{a:.2f}':>12}{'n/a' if f is None else f'{f:.2f}':>12}")
    for key, what in (("jdr_percent", "visible"), ("jdr_occluded_percent", "occluded")):
        if key in summary and summary[key]["mean"] is not None:
            lines.append(f"JDR of {what} joints at {summary[key]['threshold_px']} px: {summary[key]['mean']:.1f} %")
    for name, error in summary.get("mpjpe_by_occlusion_mm", {}).items():
        if not name.startswith("num_") and error is not None:
            lines.append(f"MPJPE of joints {name.replace('_', ' ')}: {error:.2f} mm")
    lines += [f"{k}: {v}" for k, v in summary.items() if not isinstance(v, dict)]
    return lines
