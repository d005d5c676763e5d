"""One run of ``main.py``: validate and build everything, then train, test and write the outputs.

Everything that can be checked is checked before ``OUTPUT_DIR`` is touched: the config, the
registry names, the data and the model are built and the weights loaded first, so a mistake leaves nothing
behind. A run that does not train, in an ``OUTPUT_DIR`` that holds a training run's checkpoints, writes into
a subfolder of its own (``eval_<weights>``, see ``core.engine.output_dir.output_folder``): the training run's files stay as
training left them.
"""
import logging
import os
import random
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from core.batch import collate_samples
from core.config import ConfigError, config_differences, load_config
from core.config.defaults import RESUMABLE
from core.engine.checkpoint import (Checkpointer, CheckpointError, last_checkpoint, load_weights, log_loaded,
                                   read_checkpoint, unwrap)
from core.engine.distributed import (DistContext, barrier, cleanup, init_distributed, launched_world_size,
                                     process_device, shard)
from core.engine.logger import TensorBoard, close_logger, hold_early_records, setup_logger
from core.engine.output_dir import check_free_space, earlier_outputs, output_folder, remove_earlier_outputs
from core.engine.preview import preview_sample
from core.engine.solver import build_optimizer, build_scheduler
from core.engine.speed_settings import apply_speed_settings, image_backbones
from core.engine.evaluator import evaluate, run_inference
from core.engine.sequence_video import choose_sequences, write_sequence_videos
from core.engine.trained_run import load_pretrained_parts
from core.engine.trainer import BEST, RANK_SEED_STRIDE, Trainer, TrainSettings
from core.io import atomic_write, remove_stale_temporaries, save_npz_atomic, write_json_atomic, write_text_atomic
from core.registry import RegistryError
from core.video import VideoError
from core.vis import write_png
from datasets import DatasetError, build_dataset
from modeling.pipelines import PipelineConfigError, build_pipeline

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
    for key in ("MAX_EPOCHS", "BATCH_SIZE", "LOG_PERIOD", "CHECKPOINT_PERIOD"):
        if getattr(s, key) < 1:
            raise ConfigError(f"SOLVER.{key} must be >= 1, got {getattr(s, key)}")
    if s.KEEP_CHECKPOINTS < 0:
        raise ConfigError(f"SOLVER.KEEP_CHECKPOINTS must be >= 0 (the newest periodic checkpoints kept; 0 = all), got "
                          f"{s.KEEP_CHECKPOINTS}")
    if s.BASE_LR <= 0 or s.GRAD_CLIP < 0 or s.HALVING_PERIOD < 0:
        raise ConfigError(f"SOLVER.BASE_LR must be > 0, SOLVER.GRAD_CLIP >= 0 and SOLVER.HALVING_PERIOD >= 0, got "
                          f"{s.BASE_LR}, {s.GRAD_CLIP} and {s.HALVING_PERIOD}")
    if cfg.TEST.BATCH_SIZE < 1 or cfg.DATASETS.NUM_WORKERS < 0:
        raise ConfigError("TEST.BATCH_SIZE must be >= 1 and DATASETS.NUM_WORKERS >= 0")
    if cfg.VIS.VIDEO_FPS <= 0 or cfg.VIS.VIDEO_HEIGHT < 16 or cfg.VIS.VIDEO_SEQUENCES < 0:
        raise ConfigError(f"VIS.VIDEO_FPS must be > 0, VIS.VIDEO_HEIGHT >= 16 and VIS.VIDEO_SEQUENCES >= 0, got "
                          f"{cfg.VIS.VIDEO_FPS}, {cfg.VIS.VIDEO_HEIGHT} and {cfg.VIS.VIDEO_SEQUENCES}")


def resume_point(cfg, model) -> Optional[Path]:
    """The checkpoint in OUTPUT_DIR that this run continues (training) or tests (``DOTRAIN False``
    without ``WEIGHTS``), after checking that it was made with the same configuration."""
    last = last_checkpoint(cfg.OUTPUT_DIR)
    if last is None or (not cfg.DOTRAIN and cfg.WEIGHTS):
        return None
    try:
        old_config = read_checkpoint(str(last)).get("config", "")
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
    differences = config_differences(old_config, cfg, RESUMABLE)
    if differences:
        key, old, new = differences[0]
        raise ConfigError(f"OUTPUT_DIR '{cfg.OUTPUT_DIR}' holds a checkpoint of another configuration ({key}: "
                          f"{old!r} there, {new!r} now, {len(differences)} difference(s) in all); choose another "
                          "OUTPUT_DIR, or delete that folder to start over")
    return last


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
    hold_early_records()  # warnings about the config and data also reach log.txt
    try:
        cfg = load_config(config_file, overrides)
        check_solver(cfg)
        device = resolve_device(cfg.DEVICE)
        if cfg.SOLVER.SYNC_BN and device.type != "cuda" and launched_world_size() > 1:
            raise ConfigError("SOLVER.SYNC_BN needs CUDA devices (PyTorch's SyncBatchNorm works on GPUs only); on "
                              "the CPU each process normalises over its own batch: set SOLVER.SYNC_BN False")
        context = init_distributed(device)
        device = process_device(device, context)
        seed_everything(cfg.SEED)
        if not (cfg.DOTRAIN or cfg.DOTEST or cfg.VIS.VIDEO):
            raise ConfigError("DOTRAIN, DOTEST and VIS.VIDEO are all False: the run would do nothing")
        if cfg.WEIGHTS and not Path(cfg.WEIGHTS).is_file():
            raise ConfigError(f"WEIGHTS: checkpoint file '{cfg.WEIGHTS}' does not exist")
        # the data before the model: a wrong data path is reported before pretrained weights are fetched
        test_set = build_dataset(cfg, "test") if cfg.DOTEST or cfg.VIS.VIDEO else None
        train_set = build_dataset(cfg, "train") if cfg.DOTRAIN else None
        val_set = build_dataset(cfg, "val") if train_set is not None and cfg.DATASETS.VAL_SUBJECTS else None
        model = build_pipeline(cfg)
        load_pretrained_parts(cfg, model)  # MODEL.*.WEIGHTS of the parts composed from earlier runs
        if not model.trainable:
            train_set = val_set = None
        if cfg.TEST.GT_3D == "triangulated" and (not model.predicts_absolute or cfg.DATASETS.VIEWS != "all"):
            raise ConfigError("TEST.GT_3D triangulated compares world 3D with the DLT of the true 2D of every view: "
                              "it needs a triangulation or image pipeline and DATASETS.VIEWS all")
        if cfg.MODEL.CHANNELS_LAST and not image_backbones(model):
            raise ConfigError("MODEL.CHANNELS_LAST is for image pipelines (MODEL.BACKBONE); this one has no backbone")
        resume_from = resume_point(cfg, model) if model.trainable else None
        weights = weights_to_load(cfg, resume_from)
        if model.trainable and (cfg.DOTEST or cfg.VIS.VIDEO) and not cfg.DOTRAIN and not weights:
            raise ConfigError("DOTRAIN is False but the pipeline has trainable parameters and no weights: set WEIGHTS "
                              "to a checkpoint (or train first into OUTPUT_DIR)")
        loaded = _load(cfg, model, weights) if weights else None
        check_free_space(cfg, model, train_set is not None)
    except (ConfigError, RegistryError, PipelineConfigError, DatasetError) as err:
        close_logger()
        raise UsageError(str(err)) from None
    if cfg.DETERMINISTIC:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)

    run_dir = Path(cfg.OUTPUT_DIR)
    output_dir = output_folder(cfg, train_set is not None, weights)
    earlier = {}
    if context.is_main:
        prepare_output_dir(output_dir)
        if output_dir != run_dir:
            earlier = earlier_outputs(output_dir)
        write_text_atomic(cfg.dump(), output_dir / "config.yaml")
    barrier(context)
    setup_logger(str(output_dir) if context.is_main else None, logging.INFO if context.is_main else logging.WARNING)
    logger.info("config %s -> %s (device %s%s)", config_file, output_dir, device,
                f", {context.world_size} processes" if context.enabled else "")
    if output_dir != run_dir:
        logger.info("not training: writing into %s; the files of the training run in %s stay as they are",
                    output_dir.name, run_dir)
    tested = _untrained(model)
    if loaded:
        log_loaded(*loaded)
        tested = loaded[0]
    tensorboard = TensorBoard(str(output_dir / "tensorboard") if context.is_main else None)
    model.to(device)
    apply_speed_settings(cfg, model, device)
    checkpointer = Checkpointer(str(run_dir), model, config_text=cfg.dump(), writes=context.is_main,
                                world_size=context.world_size, keep=cfg.SOLVER.KEEP_CHECKPOINTS)
    try:
        if train_set is not None:
            _train(cfg, model, train_set, val_set, checkpointer, tensorboard, device, context)
            barrier(context)  # rank 0 has written the final (and best) checkpoints
            tested = f"{run_dir / 'model_final.pth'} (epoch {cfg.SOLVER.MAX_EPOCHS})"
            if val_set is not None:
                best = load_weights(model, str(run_dir / f"{BEST}.pth"))
                log_loaded(*best)
                tested = best[0] + ", best on validation"
        elif cfg.DOTRAIN:
            logger.info("the pipeline has no trainable parameters: skipping training")
        predictions = _test(cfg, model, test_set, tensorboard, device, output_dir, tested, context) \
            if cfg.DOTEST else None
        if cfg.VIS.VIDEO and context.is_main:
            _write_videos(cfg, model, test_set, predictions, device, output_dir / "videos")
        remove_earlier_outputs(earlier)
    except (CheckpointError, VideoError) as err:
        raise UsageError(str(err)) from None
    finally:
        tensorboard.close()
        cleanup(context)
        close_logger()


def weights_to_load(cfg, resume_from: Optional[Path]) -> str:
    """The checkpoint loaded before training or testing: WEIGHTS, else, for a run that does not train, the one
    that OUTPUT_DIR's training chose (its best validated, else its last); "" for none."""
    if cfg.WEIGHTS:
        return cfg.WEIGHTS
    if resume_from is None or cfg.DOTRAIN:
        return ""
    best = Path(cfg.OUTPUT_DIR) / f"{BEST}.pth"
    return str(best if best.is_file() else resume_from)


def _load(cfg, model, weights: str) -> Tuple[str, List[str]]:
    """Load ``weights`` into the model before anything is written (``load_weights``'s result); fine-tuning may add
    layers that start as the identity, testing needs every weight."""
    try:
        return load_weights(model, weights, unwrap(model).insertable_modules if cfg.DOTRAIN else ())
    except CheckpointError as err:
        raise ConfigError(f"WEIGHTS: {err}" if cfg.WEIGHTS else str(err)) from None


def _untrained(model) -> str:
    """What a run tests without loading weights (metrics.json's "checkpoint")."""
    if model.trainable:
        return "the initial weights"
    return "the MODEL.*.WEIGHTS loaded at build (all frozen)" if any(True for _ in model.parameters()) else \
        "none (parameter-free)"


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
    if hasattr(test_set, "protocol_metrics"):   # the dataset's own published protocol (e.g. RHD's PCK and AUC)
        summary.update(test_set.protocol_metrics(predictions))
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
        pred_3d = np.full((len(test_set), test_set.skeleton.num_joints, 3), np.nan, dtype=np.float32)
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
        picture = preview_sample(sample, test_set.skeleton, predictions["pred_3d"][index], title, absolute=absolute)
        atomic_write(folder / f"sample_{index:06d}.png", lambda tmp: write_png(tmp, picture))
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
    confusion = summary.get("left_right_confusion", {})
    if confusion.get("num_pairs"):
        lines.append(f"left/right pairs swapped {confusion['swapped_percent']:.1f} %, put on one limb "
                     f"{confusion['collapsed_percent']:.1f} % (of {confusion['num_pairs']} view pairs)")
    protocol = summary.get("mpi_inf_3dhp", {}).get("all", {})
    if protocol.get("pck") is not None and protocol.get("mpjpe_mm") is not None:
        lines.append(f"MPI-INF-3DHP ({protocol['num_frames']} frames): PCK {protocol['pck']:.1f} %, AUC "
                     f"{protocol['auc']:.1f} %, MPJPE {protocol['mpjpe_mm']:.2f} mm")
    lines += [f"{k}: {v}" for k, v in summary.items() if not isinstance(v, dict)]
    return lines
