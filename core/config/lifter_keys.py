"""MODEL.LIFTER's keys before every lifter had its own node (MODEL.LIFTER.<NAME>), and how a file written then reads.

Until then the lifters shared one flat node: ``HIDDEN`` was an MLP's width for one lifter and channels per joint for
another, and several keys were named unlike the constructor arguments they set (``LEVEL_DIM`` -> ``features``,
``EMBED_DIM`` -> ``embed_dim_ratio``). ``MOVED`` says where each such key went for each lifter that took it;
``upgrade_lifter_keys`` rewrites a flattened mapping (an old run's ``config.yaml``, a checkpoint's config, an old
YAML file) for the lifter it names, so that old runs load, resume and compare exactly.
"""
from typing import Any, Dict, List, Tuple

OLD_PREFIX = "MODEL.LIFTER."

# old key -> {lifter: its key in MODEL.LIFTER.<LIFTER>}
MOVED = {
    "HIDDEN": {"linear": "HIDDEN", "lcn": "HIDDEN", "semgcn": "HIDDEN", "pose3d": "HIDDEN"},
    "NUM_BLOCKS": {"linear": "NUM_BLOCKS", "lcn": "NUM_BLOCKS", "semgcn": "NUM_BLOCKS", "pose3d": "NUM_BLOCKS"},
    "DROPOUT": {"linear": "DROPOUT", "lcn": "DROPOUT", "semgcn": "DROPOUT", "pose3d": "DROPOUT"},
    "MAX_NORM": {"linear": "MAX_NORM"},
    "KNN": {"lcn": "KNN"},
    "NON_LOCAL": {"semgcn": "NON_LOCAL"},
    "LATENT": {"pose3d": "LATENT"},
    "EMBED_DIM": {"poseformer": "EMBED_DIM_RATIO"},
    "DEPTH": {"poseformer": "DEPTH"},
    "NUM_HEADS": {"poseformer": "NUM_HEADS"},
    "MLP_RATIO": {"poseformer": "MLP_RATIO"},
    "DROP_PATH": {"poseformer": "DROP_PATH_RATE", "esmformer": "DROP_PATH_RATE"},
    "NUM_VIEWS": {"esmformer": "NUM_VIEWS"},
    "LEVEL_DIM": {"esmformer": "FEATURES"},
    "TRANSFORMER_DROPOUT": {"esmformer": "DROPOUT"},
    "PROJECTION_DROPOUT": {"esmformer": "PROJECTION_DROPOUT"},
}
OLD_KEYS = frozenset(OLD_PREFIX + key for key in MOVED)


def _value(old: str, value: Any) -> Any:
    if old == "MAX_NORM" and isinstance(value, bool):  # was on / off at norm 1; now the norm itself, 0 = off
        return 1.0 if value else 0.0
    return value


def upgrade_lifter_keys(flat: Dict[str, Any], lifter: str) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    """``flat`` with its old MODEL.LIFTER keys moved into the node of ``lifter`` (its MODEL.LIFTER.NAME), and the
    moves made as (old key, new key, or "" where that lifter did not take the key and it is dropped)."""
    upgraded, moves = {}, []
    for key, value in flat.items():
        if key not in OLD_KEYS:
            upgraded[key] = value
            continue
        old = key[len(OLD_PREFIX):]
        new = MOVED[old].get(lifter)
        if new is None:
            moves.append((key, ""))
            continue
        target = f"{OLD_PREFIX}{lifter.upper()}.{new}"
        upgraded[target] = _value(old, value)
        moves.append((key, target))
    return upgraded, moves
