"""Pipelines: the end-to-end models that ``main.py`` trains and tests, composed from the registries.

A pipeline maps a batch of the shared form (``datasets``) to an outputs dict holding at least
``pred_3d`` and ``target_3d``, (B, J, 3) millimetres for each sample's target (centre) frame and in
the same frame of reference, so the evaluator can compare them without knowing the method.
``predicts_absolute`` says whether ``pred_3d`` is absolute (world frame) or root-relative.

- ``TriangulationPipeline``: 2D keypoints of every view -> triangulation head -> world 3D.
- ``LiftingPipeline``: single-view 2D keypoints -> lifter -> root-relative camera-frame 3D, with the
  inputs and outputs standardised by training-set statistics (Martinez et al. 2017).
- ``ScreenLiftingPipeline``: a single-view window of 2D keypoints in normalised screen coordinates ->
  sequence lifter (PoseFormer) -> root-relative camera-frame 3D, MPJPE loss, flip test-time averaging
  (VideoPose3D's protocol, which PoseFormer follows).
- ``MultiViewLiftingPipeline``: windows of every view's 2D (normalised screen coordinates) -> multi-view
  lifter (ESMformer) -> root-relative world-frame 3D, supervised (MPJPE) or self-supervised
  (triangulation and reprojection consistency, error-aware weighting).
- ``MultiViewConsistencyPipeline``: a single-view lifter of root-relative pixels trained from the 2D of all
  views without 3D labels (Bouazizi et al. 2021) and tested on single views.
- ``RefinedPipeline``: a trained single-view lifting pipeline, frozen, whose 3D a refiner improves stage by
  stage from how it re-projects (ERD, Kang et al. 2020).
- ``DetectAndLiftPipeline``: an image pipeline's 2D of every view, mapped back to full-image pixels, lifted view
  by view by a single-view lifting pipeline; the views' root-relative 3D averaged in the world frame.
- ``ImagePipeline``: crops of every view -> ResNet heatmap backbone, optionally with an epipolar
  transformer after layer1 ("early") or before the final convolution ("late") -> heatmaps -> 2D ->
  triangulation head (dlt, ransac, or the learnable algebraic head) -> world 3D.

``build_pipeline(cfg)`` is the only place that reads the model config.
"""
import logging
from typing import Dict

import torch
from torch import nn

import modeling.backbones  # noqa: F401  (registers the backbones)
import modeling.fusion  # noqa: F401  (registers the fusion layers)
import modeling.heads  # noqa: F401  (registers the heads)
import modeling.lifters  # noqa: F401  (registers the lifters)
import modeling.losses  # noqa: F401  (registers the losses)
import modeling.refiners  # noqa: F401  (registers the refiners)
from core.engine.checkpoint import CheckpointError, load_state_strict, read_checkpoint
from core.geometry.mirror import mirror_joints_3d
from core.registry import BACKBONES, FUSIONS, HEADS, LIFTERS, LOSSES, REFINERS
from datasets.sequences import mirror_sample
from modeling.losses.error_aware import ErrorAwareWeights
from modeling.pca import principal_axes
from core.missing_joints import filled, joint_errors, masked_mean, present_joints
from modeling.losses.keypoints3d import mean_joint_error_m, smooth_mse_cm
from modeling.losses.multiview import multiview_consistency_losses, triangulated_pose
from modeling.heads.decoding import argmax_decode, centre_of_mass_decode, heatmap_to_image, soft_argmax
from core.geometry.projection import normalized_to_pixels, pixels_to_normalized
from core.skeleton import NUM_JOINTS, ROOT

logger = logging.getLogger("epipose")


class PipelineConfigError(ValueError):
    """The configured pieces do not fit together."""


class Pipeline(nn.Module):
    predicts_absolute = False
    partially_trained = False  # some trainable parameters get no gradient in some steps (DDP must look for them)

    @property
    def insertable_modules(self) -> tuple:
        """Child modules that fine-tuning may add to a checkpoint's (they start at their initialisation)."""
        return ()

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def prepare(self, train_loader) -> None:
        """Fit data-dependent state (e.g. normalisation statistics) before training; default: nothing."""

    def start_epoch(self, epoch: int) -> None:
        """Called before each training epoch (0-based), also when resuming; default: nothing."""

    def losses(self, outputs: Dict[str, torch.Tensor], batch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has nothing to train")


class TriangulationPipeline(Pipeline):
    """Triangulates the centre frame's 2D keypoints of all views."""

    predicts_absolute = True

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        centre = batch["keypoints_2d"].shape[1] // 2
        result = self.head(batch["keypoints_2d"][:, centre], batch["confidence_2d"][:, centre], batch["cameras"])
        return {"pred_3d": result.points_3d, "target_3d": batch["keypoints_3d"][:, centre],
                "valid_3d": result.valid}


class LiftingPipeline(Pipeline):
    """Single-view lifting of a window of 2D keypoints to the centre frame's root-relative 3D pose in the
    camera frame. Inputs (full-image pixels) and outputs (mm) are standardised with statistics fitted on
    the training set by ``prepare``; the loss is the MSE of the standardised outputs (Martinez et al.).
    Lifters with ``outputs_all_joints`` (the graph networks) predict every joint; their pelvis is dropped.
    With ``pca_components`` the lifter takes the standardised input's first principal components instead
    (ERD's ``--pca_input`` for the linear lifter), fitted with the statistics."""

    def __init__(self, lifter: nn.Module, num_frames: int, num_joints: int, pca_components: int = 0):
        super().__init__()
        self.lifter = lifter
        in_features, out_features = num_frames * num_joints * 2, (num_joints - 1) * 3
        if not 0 <= pca_components <= in_features:
            raise PipelineConfigError(f"MODEL.LIFTER.PCA_COMPONENTS must be in 0..{in_features} (the input's "
                                      f"coordinates; 0 = off), got {pca_components}")
        self.register_buffer("input_mean", torch.zeros(in_features))
        self.register_buffer("input_std", torch.ones(in_features))
        self.pca_components = pca_components
        if pca_components:
            self.register_buffer("pca_mean", torch.zeros(in_features))
            self.register_buffer("pca_basis", torch.eye(in_features)[:pca_components])
        self.register_buffer("target_mean", torch.zeros(out_features))
        self.register_buffer("target_std", torch.ones(out_features))
        self.register_buffer("statistics_fitted", torch.tensor(False))
        self.register_buffer("non_root", torch.tensor([j for j in range(num_joints) if j != ROOT]),
                             persistent=False)

    def _inputs_and_targets(self, batch):
        keypoints_2d = batch["keypoints_2d"]                      # B, T, 1, J, 2
        if keypoints_2d.shape[2] != 1:
            raise PipelineConfigError(f"a single-view lifter got {keypoints_2d.shape[2]} views per sample; "
                                      "set DATASETS.VIEWS single")
        inputs = keypoints_2d.flatten(1)
        return inputs, root_relative_camera_targets(batch).to(inputs.dtype)

    def _non_root(self, pose):
        return pose[:, self.non_root].flatten(1)

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        if bool(self.statistics_fitted):
            return
        inputs, targets = [], []
        for batch in train_loader:
            x, y = self._inputs_and_targets(batch)
            inputs.append(x)
            targets.append(self._non_root(y))
        inputs, targets = torch.cat(inputs).double(), torch.cat(targets).double()
        self.input_mean.copy_(inputs.mean(0))
        self.input_std.copy_(inputs.std(0).clamp_min(1e-6))
        present = torch.isfinite(targets)                       # missing target joints: left out
        if (present.sum(0) < 2).any():
            raise PipelineConfigError("the training set has fewer than 2 samples with a target for some joint: "
                                      "its output statistics cannot be fitted")
        mean = targets.nanmean(0)
        variance = torch.where(present, targets - mean, 0.0).pow(2).sum(0) / (present.sum(0) - 1)
        self.target_mean.copy_(mean)
        self.target_std.copy_(variance.sqrt().clamp_min(1e-6))
        if self.pca_components:
            mean, basis = principal_axes((inputs - self.input_mean.double()) / self.input_std.double(),
                                         self.pca_components)
            self.pca_mean.copy_(mean)
            self.pca_basis.copy_(basis)
        self.statistics_fitted.fill_(True)
        logger.info("fitted input/output standardisation%s on %d training samples",
                    f" and a {self.pca_components}-component PCA" if self.pca_components else "", len(inputs))

    def lifter_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, D) pixels -> what the lifter takes: the standardised input, or its principal components."""
        standardised = (inputs - self.input_mean) / self.input_std
        return (standardised - self.pca_mean) @ self.pca_basis.T if self.pca_components else standardised

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        inputs, target_rel = self._inputs_and_targets(batch)
        normalised = self.lifter(self.lifter_inputs(inputs))
        if getattr(self.lifter, "outputs_all_joints", False):  # graph lifters: one output node per joint
            normalised = self._non_root(normalised.view(len(normalised), -1, 3))
        pred = normalised * self.target_std + self.target_mean
        pred_3d = torch.zeros_like(target_rel)
        pred_3d[:, self.non_root] = pred.view(len(pred), -1, 3)
        return {"pred_3d": pred_3d, "target_3d": target_rel, "pred_normalised": normalised}

    def losses(self, outputs, batch):
        pred = outputs["pred_normalised"].view(len(outputs["pred_normalised"]), -1, 3)
        target = ((self._non_root(outputs["target_3d"]) - self.target_mean) / self.target_std).view_as(pred)
        present = present_joints(target)
        return {"mse_3d": masked_mean((pred - filled(target, present, pred)).pow(2).mean(-1), present)}


def root_relative_camera_targets(batch) -> torch.Tensor:
    """(B, J, 3) mm: the centre frame's 3D in the camera frame of the sample's single view, pelvis at 0."""
    cameras = batch["cameras"]
    centre = batch["keypoints_3d"].shape[1] // 2
    target_cam = cameras.world_to_camera(batch["keypoints_3d"][:, centre:centre + 1].to(cameras.dtype))[:, 0]
    return (target_cam - target_cam[:, ROOT:ROOT + 1]).float()


def normalised_screen_coordinates(keypoints_2d: torch.Tensor, cameras) -> torch.Tensor:
    """(B, T, V, J, 2) pixels of the views of ``cameras`` (B, V) -> ``x / w * 2 - (1, h / w)``: [-1, 1] across
    each image's width, the aspect ratio kept (VideoPose3D's ``normalize_screen_coordinates``)."""
    size = cameras.image_size.to(keypoints_2d.dtype)[:, None, :, None]          # B, 1, V, 1, 2 (w, h)
    width = size[..., :1]
    return keypoints_2d / width * 2 - torch.cat([torch.ones_like(width), size[..., 1:] / width], -1)


class ScreenLiftingPipeline(Pipeline):
    """Single-view lifting of a window of F frames of 2D keypoints (normalised screen coordinates) to the centre
    frame's root-relative 3D in the camera frame (Pavllo et al. 2019's protocol, used by PoseFormer).

    The lifter works in metres (outputs ``pred_3d`` in mm); the loss is the MPJPE in metres over all joints
    with the target pelvis at 0, as in the reference code (the predicted pelvis is trained towards 0, not
    forced to it). Deviation: the metrics re-centre the prediction on its own pelvis (root-relative MPJPE),
    where the reference scores the raw prediction. With ``test_flip``, the evaluation averages the prediction
    with the mirrored-back prediction of the mirrored input (``core.geometry.mirror``: about the principal
    point).
    """

    def __init__(self, lifter: nn.Module, test_flip: bool = False):
        super().__init__()
        self.lifter, self.test_flip = lifter, test_flip

    def _lift(self, batch) -> torch.Tensor:
        keypoints_2d = batch["keypoints_2d"]                                     # B, T, 1, J, 2
        if keypoints_2d.shape[2] != 1:
            raise PipelineConfigError(f"a single-view lifter got {keypoints_2d.shape[2]} views per sample; "
                                      "set DATASETS.VIEWS single")
        inputs = normalised_screen_coordinates(keypoints_2d.float(), batch["cameras"])[:, :, 0]
        return self.lifter(inputs) * 1000.0

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        pred = self._lift(batch)
        if self.test_flip and not self.training:
            pred = (pred + mirror_joints_3d(self._lift(mirror_sample(batch)))) / 2
        return {"pred_3d": pred, "target_3d": root_relative_camera_targets(batch)}

    def losses(self, outputs, batch):
        return {"mpjpe": masked_mean(*joint_errors(outputs["pred_3d"], outputs["target_3d"])) / 1000.0}


def root_relative_world_targets(batch) -> torch.Tensor:
    """(B, T, J, 3) mm: every window frame's world 3D, pelvis at 0."""
    points = batch["keypoints_3d"].float()
    return points - points[..., ROOT:ROOT + 1, :]


class MultiViewLiftingPipeline(Pipeline):
    """Multi-view lifting of windows of every view's 2D (normalised screen coordinates) to root-relative world-frame
    3D (ESMformer; the lifter works in metres, ``pred_3d`` is the centre frame in mm).

    - Supervised: the MPJPE (m) of every window frame against the root-relative world 3D (the reference's
      ``mpjpe_cal`` over all 27 frames; the predicted pelvis is trained towards 0, and the metrics re-centre
      the prediction on it, where the reference scores the raw prediction).
    - Self-supervised (the lifter predicts the centre frame): per window, ``loss_weight`` x the triangulation
      loss (mean over joints of the L1 norm, m, between the prediction and the root-relative DLT of the
      centre frame's input 2D of all views) + (1 - ``loss_weight``) x the reprojection loss (the prediction,
      placed at the DLT's pelvis, projected into every view; mean over joints of the L1 norm between its
      root-relative normalised screen coordinates and the input's, mean over views).
    - ``error_aware``: the windows' losses are averaged with ESMformer's adaptive weights
      (``modeling.losses.error_aware``) instead of uniformly.
    - ``test_flip``: the prediction is averaged with the mirrored-back prediction of the mirrored views. The
      mirrored views are those of the mirrored rig (each camera at its mirror position), which the lifter
      knows only if it was trained with ``DATASETS.FLIP``; the builder requires that.

    Fixes to the reference (``main.py``, ``common/computer_*_loss.py``): the reprojection-only setting
    (``loss_weight`` 0) works; the DLT removes lens distortion (the reference's DLT ignores it while its
    reprojection applies it); the reprojected pose sits at the triangulated pelvis, not at the world origin;
    each camera's own image height is used (the reference's ``cam_idx == 0 or 3`` test is always true);
    flips are applied in training (``DATASETS.FLIP``) and testing (the reference's flip flags duplicate
    unflipped samples).
    """

    def __init__(self, lifter: nn.Module, self_supervised: bool = False, loss_weight: float = 0.8,
                 error_aware: bool = False, test_flip: bool = False):
        super().__init__()
        if not 0.0 <= loss_weight <= 1.0:
            raise PipelineConfigError(f"MODEL.LIFTER.LOSS_W must be in [0, 1] (a convex weight), got {loss_weight}")
        self.lifter, self.self_supervised, self.loss_weight = lifter, self_supervised, loss_weight
        self.test_flip = test_flip
        self.error_weights = ErrorAwareWeights() if error_aware else None

    def prepare(self, train_loader) -> None:
        if self.error_weights is not None:
            self.error_weights.reset(train_loader.dataset.num_frames)

    def _lift(self, batch) -> torch.Tensor:
        """(B, T or 1, J, 3) root-relative world mm."""
        inputs = normalised_screen_coordinates(batch["keypoints_2d"].float(), batch["cameras"])
        return self.lifter(inputs) * 1000.0

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        pred = self._lift(batch)
        centre = 0 if pred.shape[1] == 1 else pred.shape[1] // 2
        pred_3d = pred[:, centre]
        if self.test_flip and not self.training:
            pred_3d = (pred_3d + mirror_joints_3d(self._lift(mirror_sample(batch))[:, centre])) / 2
        targets = root_relative_world_targets(batch)
        return {"pred_3d": pred_3d, "target_3d": targets[:, targets.shape[1] // 2], "pred_window": pred,
                "target_window": targets}

    def _window_losses(self, outputs, batch) -> Dict[str, torch.Tensor]:
        """Per-window (B,) losses."""
        pred = outputs["pred_window"] / 1000.0
        if not self.self_supervised:
            return {"mpjpe": masked_mean(*joint_errors(pred, outputs["target_window"] / 1000.0), dim=(1, 2))}
        keypoints_2d = batch["keypoints_2d"][:, batch["keypoints_2d"].shape[1] // 2]            # B, V, J, 2
        cameras = batch["cameras"]
        relative, valid, root = triangulated_pose(keypoints_2d, cameras)
        pseudo, valid = (relative / 1000.0).to(pred.dtype), valid.to(pred.dtype)               # B, J, 3; B, J
        pred = pred[:, pred.shape[1] // 2]                                                      # B, J, 3
        losses = {}
        if self.loss_weight > 0:
            error = (pred - pseudo).abs().sum(-1)
            losses["triangulation"] = self.loss_weight * (error * valid).sum(1) / valid.sum(1).clamp(min=1)
        if self.loss_weight < 1:
            world = (pred * 1000.0).to(cameras.dtype) + root                                   # B, J, 3 mm
            projected = cameras.project(world.unsqueeze(1).expand(-1, keypoints_2d.shape[1], -1, -1))
            screen = normalised_screen_coordinates(torch.stack([projected, keypoints_2d.to(cameras.dtype)], 1),
                                                   cameras)                                     # B, 2, V, J, 2
            screen = screen - screen[..., ROOT:ROOT + 1, :]
            error = (screen[:, 0] - screen[:, 1]).abs().sum(-1)                                 # B, V, J
            seen = valid[:, None] * torch.isfinite(error).to(pred.dtype)    # a joint behind a camera: NaN
            error = error.nan_to_num(0.0, posinf=0.0).to(pred.dtype)
            per_view = (error * seen).sum(-1) / seen.sum(-1).clamp(min=1)
            losses["reprojection"] = (1 - self.loss_weight) * per_view.mean(1)
        return losses

    def losses(self, outputs, batch):
        """The per-window losses averaged over the windows (error-aware: weighted); supervised, a window without
        any target joint (``modeling.losses.missing``) weighs nothing."""
        per_window = self._window_losses(outputs, batch)
        counted = torch.ones_like(batch["frame_ids"][:, 0], dtype=torch.bool) if self.self_supervised else \
            present_joints(outputs["target_window"]).flatten(1).any(1)
        if self.error_weights is None:
            return {name: masked_mean(value, counted) for name, value in per_window.items()}
        weights = self.error_weights(sum(per_window.values()).detach(), batch["frame_ids"], counted)
        return {name: (weights * value).sum() for name, value in per_window.items()}


class MultiViewConsistencyPipeline(Pipeline):
    """Self-supervised multi-view training of a single-view lifter (Bouazizi et al., FG 2021).

    The lifter maps each view's root-relative 2D (pixels, non-root joints) to its root-relative camera-frame
    3D. Training samples hold every view of a frame (``DATASETS.TRAIN_VIEWS all``); the losses
    (``modeling.losses.multiview``) compare the per-view predictions with the DLT of the input 2D of all
    views (``triangulation``), with each other view's pseudo-label after the relative camera rotation
    (``rigid``) and, optionally, their reprojections with the input 2D (``reprojection``). Test samples
    hold one view; ``pred_3d`` is root-relative in its camera frame, root at 0.

    Fixes to the reference training code (``vru2020/Pose_3D``, ``main_h36m.py``): the optimiser is created
    once (the reference re-creates Adam at every batch, which resets its moments); the pseudo-labels are
    computed from the input 2D with lens distortion removed (the reference reads them from an offline file
    made by a DLT that ignores distortion); the reprojection loss is root-relative in every view (the
    reference compares one of the four views in absolute pixels); the views of a frame are grouped by the
    sample, not by four consecutive rows of an unshuffled loader, so training batches can be shuffled.
    Not implemented: the reference's ``tri_out`` switch, which re-triangulates the same input 2D and so
    duplicates the triangulation loss.
    """

    def __init__(self, lifter: nn.Module, num_joints: int, reprojection_weight: float = 0.0):
        super().__init__()
        self.lifter, self.reprojection_weight = lifter, reprojection_weight
        self.register_buffer("non_root", torch.tensor([j for j in range(num_joints) if j != ROOT]),
                             persistent=False)

    def _lift(self, keypoints_2d: torch.Tensor) -> torch.Tensor:
        """(B, V, J, 2) pixels -> (B, V, J, 3) root-relative camera-frame mm, root at 0."""
        relative = keypoints_2d - keypoints_2d[..., ROOT:ROOT + 1, :]
        lifted = self.lifter(relative[..., self.non_root, :].flatten(0, 1))
        pred = lifted.new_zeros(*keypoints_2d.shape[:-1], 3)
        pred[..., self.non_root, :] = lifted.view(*keypoints_2d.shape[:2], -1, 3)
        return pred

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        keypoints_2d = batch["keypoints_2d"][:, batch["keypoints_2d"].shape[1] // 2].float()
        pred = self._lift(keypoints_2d)
        if pred.shape[1] == 1:
            return {"pred_3d": pred[:, 0], "target_3d": root_relative_camera_targets(batch)}
        return {"pred_views": pred}

    def losses(self, outputs, batch):
        if "pred_views" not in outputs:
            raise PipelineConfigError("the multi-view consistency losses need every view of a frame in a training "
                                      "sample: set DATASETS.TRAIN_VIEWS all")
        keypoints_2d = batch["keypoints_2d"][:, batch["keypoints_2d"].shape[1] // 2]
        return multiview_consistency_losses(outputs["pred_views"], keypoints_2d, batch["cameras"],
                                            self.reprojection_weight)


class RefinedPipeline(Pipeline):
    """A trained single-view lifting pipeline (``base``, frozen and always in eval mode) whose root-relative
    camera-frame 3D a refiner (``modeling.refiners``) improves from the centre frame's input 2D and camera.

    Greedy stage-wise training (ERD): epoch e trains refinement stage e // ``epochs_per_stage`` alone. The
    loss is the mean squared error, mm^2, of the refined non-root joints (ERD's MSE on the cumulative estimate).
    Outputs ``pred_lifter``, the base's estimate, besides ``pred_3d``.
    """

    partially_trained = True  # only the current stage trains

    def __init__(self, base: Pipeline, refiner: nn.Module, epochs_per_stage: int):
        super().__init__()
        self.base, self.refiner, self.epochs_per_stage = base, refiner, epochs_per_stage
        self.base.requires_grad_(False)
        self.register_buffer("non_root", torch.tensor([j for j in range(NUM_JOINTS) if j != ROOT]), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()
        return self

    def start_epoch(self, epoch: int) -> None:
        self.refiner.start_stage(epoch // self.epochs_per_stage)

    @staticmethod
    def _view(batch):
        """The centre frame's (B, J, 2) input pixels, (B,) cameras and (B, 3) true camera-frame pelvis."""
        centre = batch["keypoints_2d"].shape[1] // 2
        cameras = batch["cameras"][:, 0]
        pelvis = cameras.world_to_camera(batch["keypoints_3d"][:, centre, ROOT:ROOT + 1].to(cameras.dtype))[:, 0]
        return batch["keypoints_2d"][:, centre, 0], cameras, pelvis

    @torch.no_grad()
    def prepare(self, train_loader) -> None:
        self.refiner.fit(torch.cat([self._view(batch)[0] for batch in train_loader]))
        logger.info("fitted the refiner's 2D statistics on %d training samples", len(train_loader.dataset))

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        with torch.no_grad():
            outputs = self.base(batch)
        lifted = outputs["pred_3d"] - outputs["pred_3d"][:, ROOT:ROOT + 1]
        keypoints_2d, cameras, pelvis = self._view(batch)
        refined = self.refiner(lifted, keypoints_2d.to(lifted.dtype), cameras, pelvis)
        return {"pred_3d": refined, "target_3d": outputs["target_3d"], "pred_lifter": lifted}

    def losses(self, outputs, batch):
        errors, present = joint_errors(outputs["pred_3d"][:, self.non_root], outputs["target_3d"][:, self.non_root])
        return {"mse_3d_mm2": masked_mean(errors.pow(2), present) / 3}


class ImagePipeline(Pipeline):
    """Multi-view images to world 3D through heatmaps (He et al. 2020; Iskakov et al. 2019).

    Outputs, besides ``pred_3d`` / ``target_3d``: ``heatmaps`` (B,V,J,h,w), ``pred_2d`` (B,V,J,2) crop
    pixels, ``confidence_2d`` (B,V,J) and ``valid_3d`` (B,J).

    - 2D: ``decode`` is argmax with SimpleBaseline's quarter-pixel refinement (``argmax``), argmax with
      a second-order Taylor step (``argmax_taylor``), Epipolar Transformers' argmax + centre of mass of a
      window of ``decode_radius`` heatmap pixels (``centre_of_mass``), or the differentiable
      ``soft_argmax``. The algebraic head decodes by soft-argmax itself.
    - Confidences: for dlt / ransac the heatmap peak clamped to [0, 1]; for the algebraic head its
      learned confidence branch (sigmoid). ``MODEL.HEAD.MIN_CONFIDENCE`` thresholds these.
    - Losses: ``heatmap_loss_weight`` x the heatmap MSE of every labelled joint inside the crop (occluded
      joints too, as SimpleBaseline on Human3.6M: visibility is only used by the metrics), plus, with
      ``loss_3d_weight`` > 0, that weight x a 3D loss of the valid joints (``modeling.losses.keypoints3d``):
      ``mean_error`` (metres) or ``smooth_mse`` (learnable triangulation's, cm^2). Iskakov et al. train the
      algebraic model with the smooth MSE alone (heatmap weight 0) from a backbone pretrained on 2D.
    - Heatmaps are decoded and compared in float32 even under autocast.
    - Early fusion treats layer1 features with the same pixel-centre convention as the stride-4
      heatmaps (``Cameras.for_feature_map``); the receptive-field centres of layer1 sit 0.375
      feature pixels off that, an offset left uncorrected.
    """

    predicts_absolute = True
    DECODERS = ("argmax", "argmax_taylor", "centre_of_mass", "soft_argmax")
    LOSSES_3D = ("mean_error", "smooth_mse")

    def __init__(self, backbone: nn.Module, head: nn.Module, heatmap_loss: nn.Module, fusion: nn.Module = None,
                 merge: str = "late", decode: str = "argmax", soft_argmax_beta: float = 20.0, decode_radius: int = 8,
                 loss_3d_weight: float = 0.0, loss_3d: str = "mean_error", smooth_mse_threshold: float = 400.0,
                 heatmap_loss_weight: float = 1.0):
        super().__init__()
        if merge not in ("early", "late") or decode not in self.DECODERS:
            raise PipelineConfigError(f"MODEL.FUSION.MERGE must be early or late and MODEL.BACKBONE.DECODE one of "
                                      f"{', '.join(self.DECODERS)}, got '{merge}' and '{decode}'")
        self.backbone, self.head, self.heatmap_loss, self.fusion = backbone, head, heatmap_loss, fusion
        self.merge, self.decode, self.beta, self.loss_3d_weight = merge, decode, soft_argmax_beta, loss_3d_weight
        if decode == "centre_of_mass" and (isinstance(decode_radius, bool) or not isinstance(decode_radius, int)
                                           or decode_radius < 1):
            raise PipelineConfigError(f"MODEL.BACKBONE.DECODE_RADIUS must be a positive whole number of heatmap pixels, "
                                      f"got {decode_radius!r}")
        self.decode_radius = decode_radius
        if loss_3d not in self.LOSSES_3D or not smooth_mse_threshold > 0:
            raise PipelineConfigError(f"MODEL.HEAD.LOSS_3D must be one of {', '.join(self.LOSSES_3D)} and "
                                      f"MODEL.HEAD.SMOOTH_MSE_THRESHOLD > 0, got '{loss_3d}' and {smooth_mse_threshold}")
        if not (loss_3d_weight >= 0 and heatmap_loss_weight >= 0 and loss_3d_weight + heatmap_loss_weight > 0):
            raise PipelineConfigError(f"MODEL.HEAD.LOSS_3D_WEIGHT and MODEL.HEAD.HEATMAP_LOSS_WEIGHT must be >= 0 and "
                                      f"not both 0, got {loss_3d_weight} and {heatmap_loss_weight}")
        self.loss_3d, self.smooth_mse_threshold, self.heatmap_loss_weight = loss_3d, smooth_mse_threshold, \
            heatmap_loss_weight

    @property
    def insertable_modules(self) -> tuple:
        """Layers that may be fine-tuned into a trained baseline: the epipolar layer (the gated residual starts as the
        identity, the reference residual as the reference's EPIPOLAR.PRETRAINED starts from a single-view model) and
        the algebraic head's confidence branch (learnable triangulation starts it on a 2D-trained backbone)."""
        return tuple(name for name, part in (("fusion", self.fusion), ("head", self.head))
                     if part is not None and any(True for _ in part.parameters()))

    def _decode(self, heatmaps):
        if self.decode == "soft_argmax":
            return soft_argmax(heatmaps, self.beta)
        if self.decode == "centre_of_mass":
            return centre_of_mass_decode(heatmaps, self.decode_radius)
        return argmax_decode(heatmaps, "taylor" if self.decode == "argmax_taylor" else "quarter")

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        outputs = self.detect(batch)
        if "points_3d" in outputs:  # the algebraic head triangulates as it decodes
            points_3d, valid = outputs.pop("points_3d"), outputs.pop("valid_3d")
        else:
            result = self.head(outputs["pred_2d"], outputs["confidence_2d"], batch["cameras"])
            points_3d, valid = result.points_3d, result.valid
        centre = batch["keypoints_3d"].shape[1] // 2
        return {"pred_3d": points_3d, "target_3d": batch["keypoints_3d"][:, centre], "valid_3d": valid, **outputs}

    def detect(self, batch, attention: bool = False) -> Dict[str, torch.Tensor]:
        """``heatmaps``, ``pred_2d`` (crop pixels) and ``confidence_2d`` of every view (and, for the algebraic
        head, its ``points_3d`` and ``valid_3d``); with ``attention`` and a fusion layer, also ``epipolar``: the
        layer's attention dict (``EpipolarTransformer.forward``), its feature pixels at the backbone's stride."""
        images, cameras = batch["images"], batch["cameras"]
        features = self.backbone.forward_early(images)
        feature_cameras = cameras.for_feature_map(self.backbone.stride, tuple(features.shape[-1:-3:-1]))
        extra = {}

        def fuse(features):
            if not attention:
                return self.fusion(features, feature_cameras)
            extra["epipolar"] = self.fusion(features, feature_cameras, return_attention=True)
            return extra["epipolar"].pop("features")
        if self.fusion is not None and self.merge == "early":
            features = fuse(features)
        trunk = self.backbone.forward_trunk(features)
        features = self.backbone.forward_head(trunk)
        if self.fusion is not None and self.merge == "late":
            features = fuse(features)
        heatmaps = self.backbone.forward_final(features).float()
        if getattr(self.head, "consumes_heatmaps", False):
            result = self.head(heatmaps, trunk, feature_cameras)
            return {"heatmaps": heatmaps, "pred_2d": heatmap_to_image(result["keypoints_2d"], self.backbone.stride),
                    "confidence_2d": result["confidences"], "points_3d": result["points_3d"],
                    "valid_3d": result["valid"], **extra}
        coords, peaks = self._decode(heatmaps)
        return {"heatmaps": heatmaps, "pred_2d": heatmap_to_image(coords, self.backbone.stride),
                "confidence_2d": peaks.clamp(0.0, 1.0), **extra}

    def losses(self, outputs, batch):
        """``heatmap``: MSE against Gaussians at the exact 2D of every joint in the crop; ``joint_error_3d`` (m) or
        ``smooth_mse_3d`` (cm^2)."""
        losses = {}
        if self.heatmap_loss_weight > 0:
            exact_2d = batch["keypoints_2d_gt"][:, batch["keypoints_2d_gt"].shape[1] // 2]
            losses["heatmap"] = self.heatmap_loss_weight * self.heatmap_loss(
                outputs["heatmaps"], exact_2d, torch.ones_like(exact_2d[..., 0]))
        if self.loss_3d_weight > 0:
            pred, target, valid = outputs["pred_3d"], outputs["target_3d"], outputs["valid_3d"]
            if self.loss_3d == "smooth_mse":
                losses["smooth_mse_3d"] = self.loss_3d_weight * smooth_mse_cm(
                    pred, target, valid, self.smooth_mse_threshold).float()
            else:
                losses["joint_error_3d"] = self.loss_3d_weight * mean_joint_error_m(pred, target, valid).float()
        return losses


def crop_to_image_pixels(pixels: torch.Tensor, crop_cameras, image_cameras) -> torch.Tensor:
    """(..., J, 2) pixels of crops -> the same points in pixels of the full images (K_image K_crop^-1; the crop and
    resize are affine maps folded into K, so this is exact, lens distortion included)."""
    normalised = pixels_to_normalized(pixels.to(crop_cameras.dtype), crop_cameras.K)
    return normalized_to_pixels(normalised, image_cameras.K).to(pixels.dtype)


class DetectAndLiftPipeline(Pipeline):
    """Images of every view -> 2D (``detector``, an ``ImagePipeline`` whose head is not used) -> each view's 2D in
    full-image pixels (``crop_to_image_pixels``) -> a single-view lifting pipeline (``lifting``), one view at a
    time -> each view's root-relative camera-frame 3D rotated into the world frame and averaged over the views.

    ``pred_3d``: root-relative world 3D, mm. Either part may be frozen (fixed weights, eval mode, no loss); the
    losses are the detector's heatmap loss and the lifting pipeline's loss on every view (``lifter_*``), which
    fine-tunes the lifter on the detector's 2D. Samples must hold ``image_cameras``, the full images' cameras.
    """

    def __init__(self, detector: "ImagePipeline", lifting: Pipeline, freeze_detector: bool, freeze_lifter: bool):
        super().__init__()
        self.detector, self.lifting = detector, lifting
        self.frozen = tuple(part for part, frozen in (("detector", freeze_detector), ("lifting", freeze_lifter))
                            if frozen)
        for name in self.frozen:
            getattr(self, name).requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def forward(self, batch) -> Dict[str, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and "detector" not in self.frozen):
            detected = self.detector.detect(batch)
        pixels = crop_to_image_pixels(detected["pred_2d"], batch["cameras"], batch["image_cameras"])  # B, V, J, 2
        (b, v), centre = pixels.shape[:2], batch["keypoints_3d"].shape[1] // 2
        views = {"keypoints_2d": pixels.reshape(b * v, 1, 1, *pixels.shape[2:]),
                 "cameras": batch["image_cameras"].reshape(b * v, 1),
                 "keypoints_3d": batch["keypoints_3d"][:, centre:centre + 1].repeat_interleave(v, 0)}
        lifted = self.lifting(views)
        rotations = views["cameras"].R[:, 0].to(lifted["pred_3d"].dtype)          # world -> camera
        world = (lifted["pred_3d"] @ rotations).view(b, v, *lifted["pred_3d"].shape[1:])
        return {"pred_3d": world.mean(1), "target_3d": root_relative_world_targets(batch)[:, centre],
                "lifting_outputs": lifted, "lifting_batch": views, **detected}

    def losses(self, outputs, batch):
        losses = {}
        if "detector" not in self.frozen:
            losses.update(self.detector.losses(outputs, batch))
        if "lifting" not in self.frozen:
            lifting = self.lifting.losses(outputs["lifting_outputs"], outputs["lifting_batch"])
            losses.update({f"lifter_{k}": v for k, v in lifting.items()})
        return losses


def _build_detect_and_lift(cfg) -> DetectAndLiftPipeline:
    """MODEL.BACKBONE (+ MODEL.FUSION) from MODEL.BACKBONE.WEIGHTS, then MODEL.LIFTER from MODEL.LIFTER.WEIGHTS."""
    m = cfg.MODEL
    lifter_cls = LIFTERS.get(m.LIFTER.NAME)
    if not getattr(lifter_cls, "single_view", False) or lifter_cls.inputs not in ("standardised", "screen") or \
            cfg.DATASETS.FRAMES != 1:
        raise PipelineConfigError(f"an image pipeline's 2D is lifted one frame and one view at a time: "
                                  f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' must be a single-view lifter trained with 3D "
                                  "(linear, lcn, semgcn, poseformer with DATASETS.FRAMES 1)")
    single_view = cfg.clone()  # the lifter sees one view at a time
    single_view.defrost()
    single_view.DATASETS.VIEWS, single_view.DATASETS.TRAIN_VIEWS = "single", ""
    lifting = _build_lifting_pipeline(single_view)
    if m.HEAD.LOSS_3D_WEIGHT > 0:
        raise PipelineConfigError("MODEL.HEAD.LOSS_3D_WEIGHT trains a triangulation head; with MODEL.LIFTER the "
                                  "3D loss is the lifter's: set it to 0")
    _load_trained(lifting, m.LIFTER.WEIGHTS, "MODEL.LIFTER.WEIGHTS", "MODEL.LIFTER")
    detector = _build_image_pipeline(cfg)
    _load_trained(detector, m.BACKBONE.WEIGHTS, "MODEL.BACKBONE.WEIGHTS", "MODEL.BACKBONE and MODEL.FUSION")
    return DetectAndLiftPipeline(detector, lifting, m.BACKBONE.FREEZE, m.LIFTER.FREEZE)


def _build_head(cfg, backbone=None) -> nn.Module:
    """The configured triangulation head (the algebraic head needs the backbone's trunk channels)."""
    m, h = cfg.MODEL, cfg.MODEL.HEAD
    head_cls = HEADS.get(h.NAME)
    if h.NAME == "algebraic":
        if backbone is None:
            raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' learns from images: set MODEL.BACKBONE.NAME resnet")
        if h.CONFIDENCE_FALLBACK > 0 or not h.UNDISTORT:
            raise PipelineConfigError("MODEL.HEAD.CONFIDENCE_FALLBACK and UNDISTORT False are options of the dlt and "
                                      "ransac heads; the algebraic head weighs every view by its learned confidence "
                                      "and follows the lens: set 0 and True")
        return head_cls(num_joints=NUM_JOINTS, in_channels=backbone.trunk_channels, beta=m.BACKBONE.SOFT_ARGMAX_BETA,
                        min_confidence=h.MIN_CONFIDENCE)
    if h.CONFIDENCE_FALLBACK < 0:
        raise PipelineConfigError(f"MODEL.HEAD.CONFIDENCE_FALLBACK must be >= 0 (0 = off), got {h.CONFIDENCE_FALLBACK}")
    kwargs = dict(confidence_weighted=h.CONFIDENCE_WEIGHTED, min_confidence=h.MIN_CONFIDENCE,
                  fallback_step=h.CONFIDENCE_FALLBACK, undistort=h.UNDISTORT)
    if h.NAME == "ransac":
        kwargs["inlier_threshold_px"] = h.INLIER_THRESHOLD_PX
    return head_cls(**kwargs)


def _build_image_pipeline(cfg) -> ImagePipeline:
    m = cfg.MODEL
    if cfg.DATASETS.MODE != "images" or cfg.DATASETS.VIEWS != "all":
        raise PipelineConfigError(f"MODEL.BACKBONE.NAME '{m.BACKBONE.NAME}' needs images of all views: set DATASETS.MODE "
                                  f"images and DATASETS.VIEWS all (got {cfg.DATASETS.MODE}, {cfg.DATASETS.VIEWS})")
    if (m.LIFTER.NAME != "none") == (m.HEAD.NAME != "none"):
        raise PipelineConfigError("an image pipeline ends in MODEL.HEAD.NAME (dlt, ransac or algebraic) or in "
                                  "MODEL.LIFTER.NAME (its 2D lifted view by view); set one of them")
    if m.HEAD.NAME == "algebraic" and m.BACKBONE.DECODE != "soft_argmax":
        raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' decodes by soft-argmax: set MODEL.BACKBONE.DECODE "
                                  "soft_argmax")
    if m.HEAD.NAME == "algebraic" and m.HEAD.LOSS_3D_WEIGHT <= 0:
        raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' learns its confidences from a 3D loss alone (without it "
                                  "they get no gradient): set MODEL.HEAD.LOSS_3D_WEIGHT > 0 (learnable "
                                  "triangulation: 1 with MODEL.HEAD.LOSS_3D smooth_mse)")
    if m.HEAD.LOSS_3D_WEIGHT > 0 and m.BACKBONE.DECODE != "soft_argmax":
        raise PipelineConfigError("MODEL.HEAD.LOSS_3D_WEIGHT > 0 needs a differentiable 2D: set MODEL.BACKBONE.DECODE "
                                  "soft_argmax (argmax passes no gradient to the heatmaps)")
    try:
        backbone = BACKBONES.get(m.BACKBONE.NAME)(depth=m.BACKBONE.DEPTH, num_joints=NUM_JOINTS,
                                                  pretrained=m.BACKBONE.PRETRAINED,
                                                  deconv_channels=m.BACKBONE.DECONV_CHANNELS)
    except ValueError as err:
        raise PipelineConfigError(f"MODEL.BACKBONE: {err}") from None
    fusion = None
    if m.FUSION.NAME != "none":
        channels = backbone.early_channels if m.FUSION.MERGE == "early" else backbone.late_channels
        try:
            fusion = FUSIONS.get(m.FUSION.NAME)(channels=channels, samples=m.FUSION.SAMPLES,
                                                similarity=m.FUSION.SIMILARITY, sources=m.FUSION.SOURCES, k=m.FUSION.K,
                                                aggregation=m.FUSION.AGGREGATION, residual=m.FUSION.RESIDUAL)
        except ValueError as err:
            raise PipelineConfigError(f"MODEL.FUSION: {err}") from None
    heatmap_loss = LOSSES.get("heatmap_mse")(sigma=m.BACKBONE.HEATMAP_SIGMA, stride=backbone.stride)
    head = _build_head(cfg, backbone) if m.HEAD.NAME != "none" else None
    return ImagePipeline(backbone, head, heatmap_loss, fusion, merge=m.FUSION.MERGE,
                         decode=m.BACKBONE.DECODE, soft_argmax_beta=m.BACKBONE.SOFT_ARGMAX_BETA,
                         decode_radius=m.BACKBONE.DECODE_RADIUS, loss_3d_weight=m.HEAD.LOSS_3D_WEIGHT,
                         loss_3d=m.HEAD.LOSS_3D, smooth_mse_threshold=m.HEAD.SMOOTH_MSE_THRESHOLD,
                         heatmap_loss_weight=m.HEAD.HEATMAP_LOSS_WEIGHT)


def build_pipeline(cfg) -> Pipeline:
    """Compose the configured pieces; unknown names fail listing the registered ones."""
    m = cfg.MODEL
    for key in ("LIFTER.DROPOUT", "LIFTER.TRANSFORMER_DROPOUT", "LIFTER.PROJECTION_DROPOUT", "REFINER.DROPOUT"):
        node, name = key.split(".")
        if not 0.0 <= m[node][name] < 1.0:
            raise PipelineConfigError(f"MODEL.{key} must be a dropout probability in [0, 1), got {m[node][name]}")
    if cfg.TEST.FLIP and (m.LIFTER.NAME == "none" or m.BACKBONE.NAME != "none"):
        raise PipelineConfigError("TEST.FLIP is implemented for the screen-coordinate lifters (poseformer, esmformer), "
                                  "not for triangulation or image pipelines")
    if m.REFINER.NAME != "none" and (m.LIFTER.NAME == "none" or m.BACKBONE.NAME != "none"):
        raise PipelineConfigError(f"MODEL.REFINER.NAME '{m.REFINER.NAME}' refines a keypoint lifter: set "
                                  "MODEL.LIFTER.NAME (and MODEL.BACKBONE.NAME none)")
    if m.BACKBONE.NAME != "none":
        return _build_image_pipeline(cfg) if m.LIFTER.NAME == "none" else _build_detect_and_lift(cfg)
    if m.LIFTER.NAME != "none":
        pipeline = _build_lifting_pipeline(cfg)
        return pipeline if m.REFINER.NAME == "none" else _build_refined_pipeline(cfg, pipeline)
    if m.HEAD.NAME != "none":
        if cfg.DATASETS.VIEWS != "all":
            raise PipelineConfigError(f"MODEL.HEAD.NAME '{m.HEAD.NAME}' triangulates several views but "
                                      f"DATASETS.VIEWS is '{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS all")
        return TriangulationPipeline(_build_head(cfg))
    raise PipelineConfigError("nothing to build: set MODEL.HEAD.NAME (e.g. dlt) or MODEL.LIFTER.NAME (e.g. linear)")


def _build_refined_pipeline(cfg, base: Pipeline) -> RefinedPipeline:
    """The configured refiner around the single-view lifting pipeline ``base``, loaded from MODEL.LIFTER.WEIGHTS."""
    r, d = cfg.MODEL.REFINER, cfg.DATASETS
    if not isinstance(base, (LiftingPipeline, ScreenLiftingPipeline)) or d.VIEWS != "single" or \
            d.TRAIN_VIEWS not in ("", "single"):
        raise PipelineConfigError(f"MODEL.REFINER.NAME '{r.NAME}' refines single-view lifters trained with 3D "
                                  f"(linear, lcn, semgcn, poseformer) on single views: set DATASETS.VIEWS single and "
                                  f"DATASETS.TRAIN_VIEWS ''")
    if r.EPOCHS_PER_STAGE < 1 or (cfg.DOTRAIN and cfg.SOLVER.MAX_EPOCHS != r.STAGES * r.EPOCHS_PER_STAGE):
        raise PipelineConfigError(f"greedy stage-wise training: SOLVER.MAX_EPOCHS ({cfg.SOLVER.MAX_EPOCHS}) must be "
                                  f"MODEL.REFINER.STAGES x EPOCHS_PER_STAGE ({r.STAGES} x {r.EPOCHS_PER_STAGE})")
    try:
        refiner = REFINERS.get(r.NAME)(num_joints=NUM_JOINTS, num_stages=r.STAGES, hidden=r.HIDDEN,
                                       num_blocks=r.NUM_BLOCKS, dropout=r.DROPOUT, features=r.FEATURES,
                                       pca_components=r.PCA_COMPONENTS, root=r.ROOT, update_root=r.UPDATE_ROOT)
    except ValueError as err:
        raise PipelineConfigError(f"MODEL.REFINER: {err}") from None
    _load_trained(base, cfg.MODEL.LIFTER.WEIGHTS, "MODEL.LIFTER.WEIGHTS", "MODEL.LIFTER")
    return RefinedPipeline(base, refiner, r.EPOCHS_PER_STAGE)


def _load_trained(module: nn.Module, path: str, key: str, settings: str) -> None:
    """Load a checkpoint of an earlier run into ``module`` (a part of the pipeline being built)."""
    if not path:
        raise PipelineConfigError(f"{key} is empty: set it to the checkpoint of a trained run with the same {settings} "
                                  "settings (e.g. outs/<config>/model_best.pth)")
    try:
        load_state_strict(module, read_checkpoint(path)["model"], path)
    except CheckpointError as err:
        raise PipelineConfigError(f"{key}: {err} (it must come from a run with the same {settings} settings)") from None


def _build_lifting_pipeline(cfg) -> Pipeline:
    """The pipeline of the configured lifter (MODEL.LIFTER), on 2D keypoints."""
    m = cfg.MODEL
    if m.HEAD.NAME != "none":
        raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' and MODEL.HEAD.NAME '{m.HEAD.NAME}' "
                                  "are both set; choose one")
    lifter_cls = LIFTERS.get(m.LIFTER.NAME)
    if getattr(lifter_cls, "single_view", False) and cfg.DATASETS.VIEWS != "single":
        raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' is single-view but DATASETS.VIEWS is "
                                  f"'{cfg.DATASETS.VIEWS}'; set DATASETS.VIEWS single")
    frames, joints, lf = cfg.DATASETS.FRAMES, NUM_JOINTS, m.LIFTER
    if lf.PCA_COMPONENTS and (lifter_cls.inputs != "standardised" or getattr(lifter_cls, "outputs_all_joints", False)):
        raise PipelineConfigError(f"MODEL.LIFTER.PCA_COMPONENTS codes a flat input vector (the linear lifter); "
                                  f"'{m.LIFTER.NAME}' takes per-joint coordinates: set it to 0")
    if cfg.TEST.FLIP and lifter_cls.inputs not in ("screen", "screen_views"):
        raise PipelineConfigError(f"TEST.FLIP is implemented for the screen-coordinate lifters (poseformer, "
                                  f"esmformer), not for MODEL.LIFTER.NAME '{m.LIFTER.NAME}'")
    if lifter_cls.inputs == "screen_views":
        if cfg.DATASETS.VIEWS != "all" or cfg.DATASETS.TRAIN_VIEWS not in ("", "all"):
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' fuses every view of a frame: set "
                                      "DATASETS.VIEWS all (and DATASETS.TRAIN_VIEWS '' or all)")
        if cfg.TEST.FLIP and not cfg.DATASETS.FLIP:
            raise PipelineConfigError(f"TEST.FLIP with MODEL.LIFTER.NAME '{m.LIFTER.NAME}' shows it the mirrored "
                                      "rig, which it learns only from mirrored training samples: set "
                                      "DATASETS.FLIP True")
        if cfg.DATASETS.NAME == "synthetic" and cfg.DATASETS.SYNTHETIC.RIG != "h36m_ring":
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' learns one fixed rig (it never sees "
                                      "the cameras): set DATASETS.SYNTHETIC.RIG h36m_ring")
        try:
            lifter = lifter_cls(num_frames=frames, num_views=lf.NUM_VIEWS, num_joints=joints,
                                centre_frame=lf.SELF_SUPERVISED, features=lf.LEVEL_DIM, drop_path_rate=lf.DROP_PATH,
                                dropout=lf.TRANSFORMER_DROPOUT, projection_dropout=lf.PROJECTION_DROPOUT)
        except ValueError as err:
            raise PipelineConfigError(f"MODEL.LIFTER / DATASETS.FRAMES: {err}") from None
        return MultiViewLiftingPipeline(lifter, self_supervised=lf.SELF_SUPERVISED, loss_weight=lf.LOSS_W,
                                        error_aware=lf.ERROR_AWARE, test_flip=cfg.TEST.FLIP)
    if lifter_cls.inputs == "root_relative_pixels":
        if cfg.DATASETS.TRAIN_VIEWS != "all" or frames != 1:
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' trains on every view of single frames: "
                                      "set DATASETS.TRAIN_VIEWS all and DATASETS.FRAMES 1")
        lifter = lifter_cls(num_joints=joints, hidden=lf.HIDDEN, latent=lf.LATENT, num_blocks=lf.NUM_BLOCKS,
                            dropout=lf.DROPOUT)
        return MultiViewConsistencyPipeline(lifter, joints, reprojection_weight=lf.REPROJECTION_WEIGHT)
    if lifter_cls.inputs == "screen":
        lifter = lifter_cls(num_frames=frames, num_joints=joints, embed_dim_ratio=lf.EMBED_DIM, depth=lf.DEPTH,
                            num_heads=lf.NUM_HEADS, mlp_ratio=lf.MLP_RATIO, drop_path_rate=lf.DROP_PATH)
        return ScreenLiftingPipeline(lifter, test_flip=cfg.TEST.FLIP)
    if getattr(lifter_cls, "outputs_all_joints", False):  # graph lifters: one node per joint of one frame
        if frames != 1:
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' is a graph of one frame's joints: set "
                                      "DATASETS.FRAMES 1")
        graph_options = {"lcn": dict(knn=lf.KNN), "semgcn": dict(non_local=lf.NON_LOCAL)}.get(m.LIFTER.NAME, {})
        lifter = lifter_cls(num_joints=joints, hidden=lf.HIDDEN, num_blocks=lf.NUM_BLOCKS, dropout=lf.DROPOUT,
                            **graph_options)
        return LiftingPipeline(lifter, num_frames=1, num_joints=joints)
    lifter = lifter_cls(in_features=lf.PCA_COMPONENTS or frames * joints * 2, out_features=(joints - 1) * 3,
                        hidden=lf.HIDDEN, num_blocks=lf.NUM_BLOCKS, dropout=lf.DROPOUT,
                        max_norm=1.0 if lf.MAX_NORM else None)
    return LiftingPipeline(lifter, num_frames=frames, num_joints=joints, pca_components=lf.PCA_COMPONENTS)
