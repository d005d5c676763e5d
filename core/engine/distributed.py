"""Distributed data parallel training under ``torchrun``: process group, device, rank-0 duties, gathering.

``torchrun --nproc_per_node=N main.py --cfg X.yaml`` starts N processes with ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` set; ``init_distributed`` joins them into one process group (nccl on CUDA, gloo on the CPU)
and gives each its device (``cuda:LOCAL_RANK``). A plain ``python main.py`` is a group of one and needs no
process group. Only rank 0 writes files (logs, TensorBoard, checkpoints, metrics); evaluation shards the
test set into contiguous parts, one per rank, and gathers the predictions in dataset order, so the metrics
equal a single-process run's.
"""
import os
from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (no-op for a single process); ``device`` decides the backend."""
    world_size = launched_world_size()
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank)


def process_device(device: torch.device, context: DistContext) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when the run is on CUDA, else ``device``."""
    if device.type == "cuda" and context.enabled:
        torch.cuda.set_device(context.local_rank)
        return torch.device("cuda", context.local_rank)
    return device


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def shard(length: int, context: DistContext) -> range:
    """This rank's contiguous part of ``range(length)`` (parts differ in size by at most one)."""
    bounds = np.linspace(0, length, context.world_size + 1).round().astype(int)
    return range(int(bounds[context.rank]), int(bounds[context.rank + 1]))


def gather_in_order(part: Dict[str, Any], context: DistContext) -> Dict[str, Any]:
    """Every rank's dict of arrays (its shard's rows, in order) -> the concatenation in rank order, on every rank."""
    if not context.enabled:
        return part
    parts: List[Dict[str, Any]] = [None] * context.world_size
    dist.all_gather_object(parts, part)
    keys = dict.fromkeys(k for p in parts for k in p)  # a rank with an empty shard has fewer keys
    return {k: np.concatenate([np.asarray(p[k]) for p in parts if k in p and len(p[k])]) for k in keys}


def cleanup(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
