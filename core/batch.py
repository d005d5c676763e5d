"""The batch form's plumbing: samples stacked into a batch (tensors, ``Cameras``, ``meta`` gathered into lists),
and a batch moved to a device."""
from typing import Any, Dict, List

import numpy as np
import torch

from core.geometry.cameras import Cameras


def collate_samples(samples: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Stack a list of sample dicts (same keys) into a batch dict."""
    batch = {}
    for key, first in samples[0].items():
        values = [s[key] for s in samples]
        if isinstance(first, Cameras):
            batch[key] = Cameras.stack(values)
        elif isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray):
            batch[key] = torch.from_numpy(np.stack(values))
        elif isinstance(first, dict):
            batch[key] = {k: [v[k] for v in values] for k in first}
        else:
            batch[key] = values
    return batch


def move_batch(batch: Dict[str, Any], device, non_blocking: bool = False) -> Dict[str, Any]:
    """Move every tensor and ``Cameras`` of a batch to ``device``; ``meta`` stays on the host."""
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, (torch.Tensor, Cameras)) else v
            for k, v in batch.items()}
