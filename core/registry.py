"""A small name -> constructor registry and the registries of EpiPose.

Modules register themselves with a decorator::

    @LIFTERS.register("linear")
    class LinearLifter(nn.Module): ...

and builders look them up by the config's ``NAME``: ``LIFTERS.get(cfg.MODEL.LIFTER.NAME)``.
An unknown name raises a ``RegistryError`` (a ``KeyError``) listing the registered names.
"""
from typing import Callable, Dict, Iterator, Optional


class RegistryError(KeyError):
    """An unknown or duplicate registry name."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """Maps names to classes or functions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable] = {}

    def register(self, name: Optional[str] = None, obj: Optional[Callable] = None):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is None:
            return lambda o: self.register(name, o)
        key = name or obj.__name__
        if key in self._entries and self._entries[key] is not obj:
            raise RegistryError(f"{self.kind} registry: the name '{key}' is already registered "
                           f"to {self._entries[key].__module__}.{self._entries[key].__qualname__}")
        self._entries[key] = obj
        return obj

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise RegistryError(f"unknown {self.kind} '{name}'; registered {self.kind} names: {known}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self)})"


BACKBONES = Registry("backbone")
FUSIONS = Registry("fusion")
HEADS = Registry("head")
LIFTERS = Registry("lifter")
REFINERS = Registry("refiner")
DATASETS = Registry("dataset")
LOSSES = Registry("loss")
PIPELINES = Registry("pipeline")
