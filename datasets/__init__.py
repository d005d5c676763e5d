"""Datasets: readers that turn files (or the synthetic world) into samples of one shared form.

Each registered entry of ``DATASETS`` is a builder ``fn(cfg, split) -> torch Dataset``; it is the only
code that reads the data config. Samples are dicts (see ``datasets/synthetic/dataset.py`` for the
keys) batched by ``core.batch.collate_samples``.
"""
from core.registry import DATASETS


class DatasetError(ValueError):
    """Data that cannot be read or generated as configured (names the file or key)."""


SPLITS = ("train", "val", "test")


def subjects_of_split(cfg, split: str, train_subjects, test_subjects, group: str,
                      train_key: str = "TRAIN_SUBJECTS") -> list:
    """The subjects of ``split``: ``DATASETS.VAL_SUBJECTS`` are held out of ``train_subjects`` as the validation
    split (for choosing checkpoints, never the test subjects); ``group``.``train_key`` names the training list in
    errors."""
    held_out = list(cfg.DATASETS.VAL_SUBJECTS)
    unknown = [s for s in held_out if s not in train_subjects]
    if unknown or (held_out and len(held_out) == len(train_subjects)):
        raise DatasetError(f"DATASETS.VAL_SUBJECTS {held_out} must be some, not all, of "
                           f"{group}.{train_key} {list(train_subjects)}")
    if split == "val":
        return held_out
    if split == "train":
        return [s for s in train_subjects if s not in held_out]
    return list(test_subjects)


def stride_of_split(cfg, split: str) -> int:
    """``DATASETS.TRAIN_STRIDE`` for training; validation samples like the test split."""
    return cfg.DATASETS.TRAIN_STRIDE if split == "train" else cfg.DATASETS.TEST_STRIDE


def views_of_split(cfg, split: str) -> str:
    """``DATASETS.VIEWS``, or ``DATASETS.TRAIN_VIEWS`` for the training split when it is set."""
    return cfg.DATASETS.TRAIN_VIEWS if split == "train" and cfg.DATASETS.TRAIN_VIEWS else cfg.DATASETS.VIEWS


def registered_datasets() -> list:
    """The DATASETS.NAME values, once every reader has registered itself."""
    import datasets.h36m_images  # noqa: F401  (registers the Human3.6M image layouts)
    import datasets.h36m_keypoints  # noqa: F401  (registers the Human3.6M keypoints)
    import datasets.panoptic  # noqa: F401  (registers CMU Panoptic)
    import datasets.rhd  # noqa: F401  (registers the Rendered Hand Pose dataset)
    import datasets.ski  # noqa: F401  (registers the Ski-Pose keypoints)
    import datasets.mpi_inf_3dhp  # noqa: F401  (registers the MPI-INF-3DHP keypoints)
    import datasets.synthetic.dataset  # noqa: F401  (registers the synthetic world)
    return sorted(DATASETS)


def build_dataset(cfg, split: str):
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    registered_datasets()
    return DATASETS.get(cfg.DATASETS.NAME)(cfg, split)
