"""Run logging: a console + ``log.txt`` logger and a thin TensorBoard writer."""
import logging
import sys
from pathlib import Path
from typing import Dict, Optional

LOGGER_NAME = "epipose"


class EarlyRecords(logging.Handler):
    """Warnings logged before the run's ``log.txt`` exists (while the config and data are read): printed to stderr at
    once, and written to ``log.txt`` by ``setup_logger``."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []
        self.stderr = logging.StreamHandler(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.stderr.emit(record)


def hold_early_records() -> None:
    """Start a run's logging: until ``setup_logger``, warnings go to stderr and are kept for ``log.txt``."""
    logger = close_logger()
    logger.propagate = False
    logger.addHandler(EarlyRecords())


def setup_logger(output_dir: Optional[str], level: int = logging.INFO) -> logging.Logger:
    """Log ``level`` and above to stdout and to ``output_dir/log.txt`` (appending on resume), which also receives
    the warnings held since ``hold_early_records``; DDP ranks other than 0 log warnings only, to the console."""
    logger = logging.getLogger(LOGGER_NAME)
    early = [record for handler in logger.handlers if isinstance(handler, EarlyRecords) for record in handler.records]
    close_logger()
    logger.setLevel(level)
    logger.propagate = False
    fmt = logging.Formatter("[%(asctime)s %(levelname)s] %(message)s", datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir:
        file_handler = logging.FileHandler(Path(output_dir) / "log.txt")
        file_handler.setFormatter(fmt)
        for record in early:
            file_handler.handle(record)
        logger.addHandler(file_handler)
    return logger


def close_logger() -> logging.Logger:
    """Detach (and close) the logger's console and file handlers, so that nothing a later run of the same process
    logs before its own ``setup_logger`` lands in this run's ``log.txt``."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
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
