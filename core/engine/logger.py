"""Run logging: a console + ``log.txt`` logger and a thin TensorBoard writer."""
import logging
import sys
from pathlib import Path
from typing import Dict, Optional

LOGGER_NAME = "epipose"


def setup_logger(output_dir: Optional[str], level: int = logging.INFO) -> logging.Logger:
    """Log ``level`` and above to stdout and to ``output_dir/log.txt`` (appending on resume); DDP ranks other
    than 0 log warnings only, to the console."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("[%(asctime)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir:
        file_handler = logging.FileHandler(Path(output_dir) / "log.txt")
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


class TensorBoard:
    """A thin wrapper over ``SummaryWriter``; with no ``log_dir`` it does nothing."""

    def __init__(self, log_dir: Optional[str]):
        self.writer = None
        if log_dir:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=log_dir)

    def scalars(self, values: Dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, image_hwc, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, image_hwc, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
