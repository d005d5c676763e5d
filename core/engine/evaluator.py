"""The evaluation loop: run a pipeline over a test loader, gather predictions, compute the metrics."""
import logging
from typing import Any, Dict, Tuple

import numpy as np
import torch
from tqdm import tqdm

from core import metrics
from core.batch import move_batch
from core.geometry.triangulation import triangulate_dlt
from core.engine.checkpoint import unwrap
from core.engine.distributed import DistContext, gather_in_order
from core.missing_joints import present_joints
from core.sample_schema import centre_frame, exact_2d

logger = logging.getLogger("epipose")

IDS = ("subject", "action", "sequence", "frame")
GROUND_TRUTHS = {  # TEST.GT_3D -> what metrics.json says the 3D truth is
    "mocap": "mocap: the dataset's 3D joints",
    "triangulated": "triangulated: the DLT of the ground-truth 2D of every view through the cameras' pinhole part "
                    "(Epipolar Transformers' REAL3D, its pymvg cameras carry no distortion; compare heads with "
                    "MODEL.HEAD.UNDISTORT False)",
}


def triangulated_truth(batch) -> torch.Tensor:
    """(B, J, 3) mm: the unweighted DLT of the target frame's exact 2D (``core.sample_schema.exact_2d``) of every
    view, distortion ignored (the reference's ``computereal3d``: ``triangulate_pymvg`` with confidences 1)."""
    exact = centre_frame(exact_2d(batch))                                                  # (B, V, J, 2)
    cameras = batch["cameras"].pinhole()
    seen = torch.isfinite(exact).all(-1).to(cameras.dtype)
    return triangulate_dlt(exact.to(cameras.dtype).nan_to_num(), cameras.projection_matrices, seen).points_3d


def _errors_by_occlusion(predictions, visible: torch.Tensor, absolute: bool, root: int) -> Dict[str, Any]:
    """Mean 3D joint error (mm; root-relative for root-relative pipelines) of the joints seen in every view and of
    those occluded in at least one, with how many joints each holds."""
    pred, target = (torch.from_numpy(predictions[k]).double() for k in ("pred_3d", "target_3d"))
    if not absolute:
        pred, target = metrics.root_relative(pred, root), metrics.root_relative(target, root)
    errors = (pred - target).norm(dim=-1)                                       # (N, J), NaN where missing
    everywhere = visible.all(1)                                                # (N, J)
    result = {}
    for name, mask in (("visible_in_every_view", everywhere), ("occluded_in_some_view", ~everywhere)):
        chosen = errors[mask & torch.isfinite(errors)]
        result[name] = None if chosen.numel() == 0 else float(chosen.mean())
        result[f"num_{name}"] = int(chosen.numel())
    return result


@torch.no_grad()
def run_inference(model, loader, device: torch.device, ground_truth: str = "mocap") -> Dict[str, Any]:
    """Predictions for every sample of ``loader``: ``pred_3d`` / ``target_3d`` (N, J, 3) mm (``ground_truth``: a
    key of ``GROUND_TRUTHS``; "triangulated" needs a pipeline of absolute 3D), the sample ids
    (subject, action, sequence, frame) and, for pipelines that predict 2D, ``pred_2d`` / ``target_2d``
    (N, V, J, 2) pixels, ``confidence_2d`` and ``visibility`` (N, V, J) of the target frame and ``crop_size``
    (N, V), the width of each view's input image in pixels; for keypoint pipelines the 2D they were given,
    ``input_2d`` (N, V, J, 2) and ``input_confidence`` (N, V, J), of the target frame."""
    model = unwrap(model)  # inference on shards of unequal size: no DDP collectives in the forward pass
    model.eval()
    collected = {key: [] for key in ("pred_3d", "target_3d", "pred_2d", "target_2d", "confidence_2d", "visibility",
                                     "crop_size", "input_2d", "input_confidence")}
    ids = {key: [] for key in IDS}
    for batch in tqdm(loader, desc="test", disable=None, leave=False, dynamic_ncols=True):
        batch = move_batch(batch, device, non_blocking=True)
        outputs, targets = model(batch, **model.truth_inputs(batch)), model.targets(batch)
        collected["pred_3d"].append(outputs["pred_3d"])
        collected["target_3d"].append(targets["target_3d"] if ground_truth == "mocap" else triangulated_truth(batch))
        if "pred_2d" in outputs:
            collected["pred_2d"].append(outputs["pred_2d"])
            collected["confidence_2d"].append(outputs["confidence_2d"])
            collected["target_2d"].append(targets["target_2d"])
            collected["visibility"].append(centre_frame(batch["visibility"]))
            collected["crop_size"].append(batch["cameras"].image_size[..., 0])
        elif "keypoints_2d" in batch:  # keypoint pipelines (an image lifter has neither 2D)
            collected["input_2d"].append(centre_frame(batch["keypoints_2d"]))
            collected["input_confidence"].append(centre_frame(batch["confidence_2d"]))
        for key in IDS:
            ids[key].extend(batch["meta"][key])
    predictions = {k: torch.cat(v).float().cpu().numpy() for k, v in collected.items() if v}
    predictions.update({k: np.array(v) for k, v in ids.items()})
    predictions["frame"] = predictions["frame"].astype(np.int64)
    return predictions


def evaluate(model, loader, device: torch.device, jdr_threshold: float = 0.05,
             context: DistContext = DistContext(), ground_truth: str = "mocap") -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(metrics dict for metrics.json, predictions dict for predictions.npz). With 2D predictions the
    metrics also hold the joint detection rate of the visible joints (``jdr_percent``) and of the joints
    occluded in their view (``jdr_occluded_percent``; "occluded" is the dataset's ``visibility``: the synthetic
    world's depth test, but only "outside the crop" for the Human3.6M images; a joint without truth, NaN in the 2D
    targets, is in neither): a joint is detected within ``jdr_threshold`` x the crop width (0.05 is the reference
    code's "half head size", head size = crop width / 10); and the 3D
    error of the joints seen by every view and of those occluded in some view (``mpjpe_by_occlusion_mm``); and how
    often a view's left/right pair is swapped or put on one limb (``left_right_confusion``,
    ``metrics.left_right_confusion``, over pairs at least the JDR threshold apart). Under DDP ``loader`` holds this rank's shard of the test set
    (``distributed.shard``): the predictions of all ranks are gathered in order and every rank gets the
    metrics of the whole set. ``ground_truth`` (``TEST.GT_3D``) chooses the 3D truth, named in the metrics."""
    if ground_truth not in GROUND_TRUTHS:
        raise ValueError(f"ground_truth must be one of {', '.join(GROUND_TRUTHS)}, got {ground_truth!r}")
    predictions = gather_in_order(run_inference(model, loader, device, ground_truth), context)
    target = torch.from_numpy(predictions["target_3d"]).double()
    skeleton, absolute = unwrap(model).skeleton, unwrap(model).predicts_absolute
    summary = metrics.pose_metrics(
        torch.from_numpy(predictions["pred_3d"]).double(), target, skeleton=skeleton,
        joint_mask=present_joints(target),                    # joints missing from the data: left out, counted
        actions=list(predictions["action"]),
        sequence_ids=list(predictions["sequence"]),
        frame_indices=torch.from_numpy(predictions["frame"]),
        absolute=absolute,
    )
    summary["ground_truth_3d"] = GROUND_TRUTHS[ground_truth]
    if "pred_2d" in predictions:
        visible = torch.from_numpy(predictions["visibility"] > 0.5)
        labelled = torch.from_numpy(np.isfinite(predictions["target_2d"]).all(-1))    # joints with truth
        for key, mask in (("jdr_percent", visible & labelled), ("jdr_occluded_percent", ~visible & labelled)):
            rate = metrics.pck(torch.from_numpy(predictions["pred_2d"]), torch.from_numpy(predictions["target_2d"]),
                               jdr_threshold, mask=mask, normalize=torch.from_numpy(predictions["crop_size"]))
            summary[key] = {
                "threshold": f"{jdr_threshold} x crop width",
                "threshold_px": sorted({round(float(x), 3) for x in np.unique(jdr_threshold * predictions["crop_size"])}),
                "num_joint_views": int(mask.sum()),
                "mean": None if torch.isnan(rate).all() else float(100 * torch.nanmean(rate)),
                "per_joint": {name: None if torch.isnan(r) else float(100 * r) for name, r in zip(skeleton.joint_names, rate)},
            }
        summary["mpjpe_by_occlusion_mm"] = _errors_by_occlusion(predictions, visible, absolute, skeleton.root)
        width = torch.from_numpy(predictions["crop_size"])[..., None, None]      # in crop widths, as the JDR
        summary["left_right_confusion"] = {
            "min_separation": f"{jdr_threshold} x crop width",
            **metrics.left_right_confusion(torch.from_numpy(predictions["pred_2d"]) / width,
                                           torch.from_numpy(predictions["target_2d"]) / width, jdr_threshold,
                                           skeleton)}
    return summary, predictions
