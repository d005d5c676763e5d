"""The speed settings of a run: MODEL.CHANNELS_LAST and MODEL.COMPILE (SOLVER.AMP is the trainer's)."""
import logging

import torch

logger = logging.getLogger("epipose")

NETWORKS = ("backbone", "fusion", "lifter")  # the submodules MODEL.COMPILE compiles


def image_backbones(model) -> list:
    """The model's image backbones (the modules that can take their images in channels_last)."""
    return [m for m in model.modules() if hasattr(m, "channels_last")]


def use_channels_last(model) -> None:
    """MODEL.CHANNELS_LAST: the convolutions' weights and the backbones' input images in channels_last."""
    model.to(memory_format=torch.channels_last)
    for backbone in image_backbones(model):
        backbone.channels_last = True


def compile_networks(model) -> list:
    """MODEL.COMPILE: ``torch.compile`` the networks (NETWORKS) in place, so the state dict keys stay the same;
    returns their names."""
    compiled = [name for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in NETWORKS]
    for name in compiled:
        model.get_submodule(name).compile()
    return compiled


def apply_speed_settings(cfg, model, device: torch.device) -> None:
    """MODEL.CHANNELS_LAST and MODEL.COMPILE; SOLVER.AMP is the trainer's."""
    if cfg.MODEL.CHANNELS_LAST:
        use_channels_last(model)
    if cfg.MODEL.COMPILE:
        logger.info("torch.compile (device %s): %s; the first steps compile", device.type,
                    ", ".join(compile_networks(model)))
    if cfg.SOLVER.AMP and device.type != "cuda":
        logger.info("SOLVER.AMP is for CUDA devices: training in float32 on %s", device.type)
