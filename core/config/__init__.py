"""Configuration: the yacs defaults tree (``defaults.py``) and a strict loader.

``load_config(path, overrides)`` merges a YAML file and then ``KEY VALUE`` overrides into the
defaults. A file may start from another with ``_BASE_: other.yaml`` (a path relative to the file):
the base is merged first, then the file's own keys, so a variant states only what it changes. Unknown keys, values of the wrong type and malformed files raise ``ConfigError``, whose
one-line message names the key (and the closest valid keys) or the file; so do values of the enumerated keys
(``defaults.CHOICES``) outside their allowed values, naming the key, the value and those.
A file (with its bases) that does not set MODEL.PIPELINE was written before that key existed: it gets the pipeline
its model's parts then built (``core.config.pipelines``), with a warning where that is not the default. Keys of
MODEL.LIFTER from before every lifter had its own node are read as their new keys (``core.config.lifter_keys``), with
a warning.
"""
import ast
import difflib
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml
from yacs.config import CfgNode as CN

from core.config.defaults import CHOICES, get_defaults
from core.config.lifter_keys import OLD_KEYS, upgrade_lifter_keys
from core.config.pipelines import PIPELINE_KEY, legacy_pipeline

__all__ = ["ConfigError", "load_config", "get_defaults", "default_output_dir", "config_differences"]

logger = logging.getLogger("epipose")


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


def _flatten(node: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in node.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def _closest(key: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    close += [v for v in valid if v.rsplit(".", 1)[-1] == leaf and v not in close]
    return ", ".join(close[:3]) if close else "(none)"


def _coerce(value: Any, default: Any, key: str, source: str) -> Any:
    """Check ``value`` against the type of ``default``; return it in the default's type."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    raise ConfigError(f"{source}: {key} expects a value of type {type(default).__name__} "
                      f"(default {default!r}), got {value!r} of type {type(value).__name__}")


def _check_choice(value: Any, key: str, source: str) -> Any:
    """``value`` if ``key`` is not enumerated (``CHOICES``) or allows it."""
    allowed = CHOICES.get(key)
    if allowed is None or value in allowed:
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"{source}: {key}: unknown value {value!r}; expected one of "
                      f"{', '.join(repr(a) for a in allowed)}{hint}")


def _parse_override(text: str) -> Any:
    """Command-line values are Python / YAML literals; anything else is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if text in ("True", "False", "true", "false"):
        return text.lower() == "true"
    return text


def _merge(cfg: CN, updates: Dict[str, Any], source: str) -> None:
    valid = _flatten(cfg)
    for key, value in updates.items():
        if key not in valid and any(v.startswith(key + ".") for v in valid):
            raise ConfigError(f"{source}: '{key}' is a group of keys and needs a mapping, got {value!r}")
        if key not in valid:
            raise ConfigError(f"{source}: unknown config key '{key}'; closest valid keys: {_closest(key, valid)}")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = _check_choice(_coerce(value, valid[key], key, source), key, source)


def _upgrade(cfg: CN, flat: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``flat`` with the old keys of MODEL.LIFTER moved into the node of the lifter it (or ``cfg``) names, with one
    warning that lists the moves."""
    if not OLD_KEYS.intersection(flat):
        return flat
    lifter = flat.get("MODEL.LIFTER.NAME", cfg.MODEL.LIFTER.NAME)
    flat, moves = upgrade_lifter_keys(flat, lifter)
    moved = ", ".join(f"{old} -> {new}" for old, new in moves if new) or "none"
    dropped = ", ".join(old for old, new in moves if not new) or "none"
    logger.warning("%s uses keys of MODEL.LIFTER from before every lifter had its own node (MODEL.LIFTER.<NAME>); "
                   "read as: %s; ignored (MODEL.LIFTER.NAME '%s' never took them): %s", source, moved, lifter, dropped)
    return flat


BASE_KEY = "_BASE_"


def _read_with_bases(path: Path, chain: Tuple[Path, ...] = ()) -> List[Tuple[Path, Dict[str, Any]]]:
    """[(file, mapping)] from the deepest ``_BASE_`` to ``path``, each without its ``_BASE_`` key."""
    if not path.is_file():
        via = f" (the _BASE_ of '{chain[-1]}')" if chain else ""
        raise ConfigError(f"config file '{path}' does not exist{via}")
    if path.resolve() in {p.resolve() for p in chain}:
        raise ConfigError(f"config file '{path}': _BASE_ files form a cycle: {' -> '.join(map(str, chain + (path,)))}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file '{path}' is not valid YAML: {' '.join(str(err).split())}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of keys, got {type(loaded).__name__}")
    base = loaded.pop(BASE_KEY, None)
    if base is None:
        return [(path, loaded)]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config file '{path}': {BASE_KEY} must be the path of a config file, got {base!r}")
    return _read_with_bases(path.parent / base, chain + (path,)) + [(path, loaded)]


def load_config(config_file: Optional[str] = None, overrides: Optional[List[str]] = None) -> CN:
    """Defaults, then the YAML file, then the ``KEY VALUE`` overrides; returns a frozen config."""
    cfg = get_defaults()
    states_pipeline = not config_file  # without a file, MODEL.PIPELINE is its default or the override's
    if config_file:
        for path, loaded in _read_with_bases(Path(config_file)):
            flat = _upgrade(cfg, _flatten(loaded), f"config file '{path}'")
            _merge(cfg, flat, f"config file '{path}'")
            states_pipeline |= PIPELINE_KEY in flat
    overrides = list(overrides or [])
    if len(overrides) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs; '{overrides[-1]}' has no value")
    updates = _upgrade(cfg, {k: _parse_override(v) for k, v in zip(overrides[0::2], overrides[1::2])}, "command line")
    _merge(cfg, updates, "command line")
    if not states_pipeline and PIPELINE_KEY not in updates:  # a file written before the key existed
        cfg.MODEL.PIPELINE = legacy_pipeline(_flatten(cfg))
        if cfg.MODEL.PIPELINE != get_defaults().MODEL.PIPELINE:
            logger.warning("config file '%s' does not set %s (written before the key existed): it builds the %s "
                           "pipeline; add 'MODEL: PIPELINE: %s' to it", config_file, PIPELINE_KEY,
                           cfg.MODEL.PIPELINE, cfg.MODEL.PIPELINE)
    if not cfg.OUTPUT_DIR:
        cfg.OUTPUT_DIR = default_output_dir(config_file)
    cfg.freeze()
    return cfg


def config_differences(old_yaml: str, cfg: CN, ignore: Iterable[str] = ()) -> List[Tuple[str, Any, Any]]:
    """(key, old value, current value) for every key whose value in the dumped config ``old_yaml``
    differs from ``cfg``, skipping the keys in ``ignore``. Keys the old config lacks (added to the
    defaults since) count as their default, MODEL.PIPELINE as the pipeline it was built with
    (``core.config.pipelines.legacy_pipeline``), the old keys of MODEL.LIFTER as their new ones
    (``core.config.lifter_keys``); keys it has that no longer exist are ignored."""
    old = _flatten(yaml.safe_load(old_yaml) or {})
    old.setdefault(PIPELINE_KEY, legacy_pipeline(old))  # a config dumped before the key existed
    old, _ = upgrade_lifter_keys(old, old.get("MODEL.LIFTER.NAME", "none"))
    new = _flatten(cfg)
    defaults = _flatten(get_defaults())
    skip = set(ignore)
    return [(k, old.get(k, defaults[k]), new[k]) for k in sorted(new)
            if k not in skip and old.get(k, defaults[k]) != new[k]]


def default_output_dir(config_file: Optional[str]) -> str:
    return str(Path("outs") / (Path(config_file).stem if config_file else "default"))
