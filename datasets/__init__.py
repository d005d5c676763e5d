"""Datasets: readers that turn files (or the synthetic world) into samples of one shared form.

Each registered entry of ``DATASETS`` is a builder ``fn(cfg, split) -> torch Dataset``; it is the only
code that reads the data config. Samples are dicts (see ``datasets/synthetic/dataset.py`` for the
keys) batched by ``datasets.collate.collate_samples``.
"""
from core.registry import DATASETS


class DatasetError(ValueError):
    """Data that cannot be read or generated as configured (names the file or key)."""


SPLITS = ("train", "test")


def views_of_split(cfg, split: str) -> str:
    """``DATASETS.VIEWS``, or ``DATASETS.TRAIN_VIEWS`` for the training split when it is set."""
    return cfg.DATASETS.TRAIN_VIEWS if split == "train" and cfg.DATASETS.TRAIN_VIEWS else cfg.DATASETS.VIEWS


def build_dataset(cfg, split: str):
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    import datasets.h36m_images  # noqa: F401  (registers the Human3.6M image layouts)
    import datasets.h36m_keypoints  # noqa: F401  (registers the Human3.6M keypoints)
    import datasets.synthetic.dataset  # noqa: F401  (registers the synthetic world)
    return DATASETS.get(cfg.DATASETS.NAME)(cfg, split)
