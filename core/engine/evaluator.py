"""The evaluation loop: run a pipeline over a test loader, gather predictions, compute the metrics."""
import logging
from typing import Any, Dict, Tuple

import numpy as np
import torch
from tqdm import tqdm

from core import metrics
from core.engine.checkpoint import unwrap
from datasets.collate import move_batch

logger = logging.getLogger("epipose")


@torch.no_grad()
def run_inference(model, loader, device: torch.device) -> Dict[str, Any]:
    """Predictions for every sample of ``loader``: arrays of ``pred_3d`` / ``target_3d`` (N, J, 3) mm and
    the sample ids (subject, action, sequence, frame)."""
    model.eval()
    collected = {"pred_3d": [], "target_3d": [], "subject": [], "action": [], "sequence": [], "frame": []}
    for batch in tqdm(loader, desc="test", disable=None, leave=False, dynamic_ncols=True):
        batch = move_batch(batch, device, non_blocking=True)
        outputs = model(batch)
        collected["pred_3d"].append(outputs["pred_3d"].float().cpu())
        collected["target_3d"].append(outputs["target_3d"].float().cpu())
        for key in ("subject", "action", "sequence", "frame"):
            collected[key].extend(batch["meta"][key])
    return {
        "pred_3d": torch.cat(collected["pred_3d"]).numpy(),
        "target_3d": torch.cat(collected["target_3d"]).numpy(),
        "subject": np.array(collected["subject"]),
        "action": np.array(collected["action"]),
        "sequence": np.array(collected["sequence"]),
        "frame": np.array(collected["frame"], dtype=np.int64),
    }


def evaluate(model, loader, device: torch.device) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(metrics dict for metrics.json, predictions dict for predictions.npz)."""
    predictions = run_inference(model, loader, device)
    summary = metrics.pose_metrics(
        torch.from_numpy(predictions["pred_3d"]).double(),
        torch.from_numpy(predictions["target_3d"]).double(),
        actions=list(predictions["action"]),
        sequence_ids=list(predictions["sequence"]),
        frame_indices=torch.from_numpy(predictions["frame"]),
        absolute=unwrap(model).predicts_absolute,
    )
    return summary, predictions
