"""The image pipeline: crops of every view -> ResNet heatmap backbone, optionally with an epipolar transformer after
layer1 ("early") or before the final convolution ("late") -> heatmaps -> 2D -> triangulation head (dlt, ransac, or
the learnable algebraic head) -> world 3D."""
from typing import Dict

import torch
from torch import nn

from core.registry import BACKBONES, FUSIONS, LOSSES, PIPELINES
from core.sample_schema import centre_frame, exact_2d
from core.skeleton import H36M17, Skeleton, skeleton_of
from modeling.heads.decoding import argmax_decode, centre_of_mass_decode, heatmap_to_image, soft_argmax
from modeling.losses.keypoints3d import mean_joint_error_m, smooth_mse_cm
from modeling.pipelines.base import Pipeline, PipelineConfigError
from modeling.pipelines.triangulation import build_head


@PIPELINES.register("image")
class ImagePipeline(Pipeline):
    """Multi-view images to world 3D through heatmaps (He et al. 2020; Iskakov et al. 2019).

    Outputs, besides ``pred_3d``: ``heatmaps`` (B,V,J,h,w), ``pred_2d`` (B,V,J,2) crop
    pixels, ``confidence_2d`` (B,V,J) and ``valid_3d`` (B,J).

    - 2D: ``decode`` is argmax with SimpleBaseline's quarter-pixel refinement (``argmax``), argmax with
      a second-order Taylor step (``argmax_taylor``), Epipolar Transformers' argmax + centre of mass of a
      window of ``decode_radius`` heatmap pixels (``centre_of_mass``), or the differentiable
      ``soft_argmax`` (which the algebraic head needs: its 3D loss trains the heatmaps through it).
    - Confidences: for dlt / ransac the heatmap peak clamped to [0, 1]; for the algebraic head its
      learned confidence branch (sigmoid). ``MODEL.HEAD.MIN_CONFIDENCE`` thresholds these.
    - Losses: ``heatmap_loss_weight`` x the heatmap MSE of every labelled joint inside the crop (occluded
      joints too, as SimpleBaseline on Human3.6M: visibility is only used by the metrics; a joint without
      truth, NaN in ``keypoints_2d_crop``, has no target and weight 0), plus, with
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
    parts = "MODEL.BACKBONE.NAME (e.g. resnet) and MODEL.HEAD.NAME, with MODEL.LIFTER.NAME none"

    def __init__(self, backbone: nn.Module, head: nn.Module, heatmap_loss: nn.Module, fusion: nn.Module = None,
                 merge: str = "late", decode: str = "argmax", soft_argmax_beta: float = 20.0, decode_radius: int = 8,
                 loss_3d_weight: float = 0.0, loss_3d: str = "mean_error", smooth_mse_threshold: float = 400.0,
                 heatmap_loss_weight: float = 1.0, skeleton: Skeleton = H36M17):
        super().__init__(skeleton)
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

    @classmethod
    def from_config(cls, cfg) -> "ImagePipeline":
        """MODEL.BACKBONE, MODEL.FUSION and MODEL.HEAD (none: the 2D is lifted, see ``DetectAndLiftPipeline``)."""
        m, skeleton = cfg.MODEL, skeleton_of(cfg)
        if cfg.DATASETS.MODE != "images" or cfg.DATASETS.VIEWS != "all":
            raise PipelineConfigError(f"MODEL.BACKBONE.NAME '{m.BACKBONE.NAME}' needs images of all views: set "
                                      f"DATASETS.MODE images and DATASETS.VIEWS all (got {cfg.DATASETS.MODE}, "
                                      f"{cfg.DATASETS.VIEWS})")
        if (m.LIFTER.NAME != "none") == (m.HEAD.NAME != "none"):
            raise PipelineConfigError("an image pipeline ends in MODEL.HEAD.NAME (dlt, ransac or algebraic) or in "
                                      "MODEL.LIFTER.NAME (its 2D lifted view by view); set one of them")
        if m.HEAD.NAME == "algebraic" and m.BACKBONE.DECODE != "soft_argmax":
            raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' decodes by soft-argmax: set MODEL.BACKBONE.DECODE "
                                      "soft_argmax")
        if m.HEAD.NAME == "algebraic" and m.HEAD.LOSS_3D_WEIGHT <= 0:
            raise PipelineConfigError("MODEL.HEAD.NAME 'algebraic' learns its confidences from a 3D loss alone "
                                      "(without it they get no gradient): set MODEL.HEAD.LOSS_3D_WEIGHT > 0 (learnable "
                                      "triangulation: 1 with MODEL.HEAD.LOSS_3D smooth_mse)")
        if m.HEAD.LOSS_3D_WEIGHT > 0 and m.BACKBONE.DECODE != "soft_argmax":
            raise PipelineConfigError("MODEL.HEAD.LOSS_3D_WEIGHT > 0 needs a differentiable 2D: set "
                                      "MODEL.BACKBONE.DECODE soft_argmax (argmax passes no gradient to the heatmaps)")
        try:
            backbone = BACKBONES.get(m.BACKBONE.NAME)(depth=m.BACKBONE.DEPTH, num_joints=skeleton.num_joints,
                                                      pretrained=m.BACKBONE.PRETRAINED,
                                                      deconv_channels=m.BACKBONE.DECONV_CHANNELS)
        except ValueError as err:
            raise PipelineConfigError(f"MODEL.BACKBONE: {err}") from None
        fusion = None
        if m.FUSION.NAME != "none":
            f = m.FUSION
            channels = backbone.early_channels if f.MERGE == "early" else backbone.late_channels
            try:
                fusion = FUSIONS.get(f.NAME)(channels=channels, samples=f.SAMPLES, similarity=f.SIMILARITY,
                                             sources=f.SOURCES, k=f.K, aggregation=f.AGGREGATION, residual=f.RESIDUAL,
                                             projections=f.PROJECTIONS)
            except ValueError as err:
                raise PipelineConfigError(f"MODEL.FUSION: {err}") from None
        heatmap_loss = LOSSES.get("heatmap_mse")(sigma=m.BACKBONE.HEATMAP_SIGMA, stride=backbone.stride)
        head = build_head(cfg, backbone) if m.HEAD.NAME != "none" else None
        return cls(backbone=backbone, head=head, heatmap_loss=heatmap_loss, fusion=fusion, merge=m.FUSION.MERGE,
                   decode=m.BACKBONE.DECODE, soft_argmax_beta=m.BACKBONE.SOFT_ARGMAX_BETA,
                   decode_radius=m.BACKBONE.DECODE_RADIUS, loss_3d_weight=m.HEAD.LOSS_3D_WEIGHT,
                   loss_3d=m.HEAD.LOSS_3D, smooth_mse_threshold=m.HEAD.SMOOTH_MSE_THRESHOLD,
                   heatmap_loss_weight=m.HEAD.HEATMAP_LOSS_WEIGHT, skeleton=skeleton)

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
        """The world 3D of the target frame from the images and cameras alone (the detections of ``detect``, the
        head's ``pred_3d`` and ``valid_3d``; ``confidence_2d`` is the confidence the head used)."""
        outputs, trunk = self._detect(batch)
        result = self.head(outputs["pred_2d"], outputs["confidence_2d"], batch["cameras"], features=trunk)
        return {**outputs, "pred_3d": result.points_3d, "valid_3d": result.valid, "confidence_2d": result.confidence}

    def targets(self, batch) -> Dict[str, torch.Tensor]:
        """``target_3d`` (B, J, 3) world mm and ``target_2d`` (B, V, J, 2) crop pixels of the target frame."""
        return {"target_3d": centre_frame(batch["keypoints_3d"]), "target_2d": centre_frame(exact_2d(batch))}

    def detect(self, batch, attention: bool = False) -> Dict[str, torch.Tensor]:
        """``heatmaps``, ``pred_2d`` (crop pixels) and ``confidence_2d`` (the heatmap peaks) of every view; with
        ``attention`` and a fusion layer, also ``epipolar``: the layer's attention dict
        (``EpipolarTransformer.forward``), its feature pixels at the backbone's stride."""
        return self._detect(batch, attention)[0]

    def _detect(self, batch, attention: bool = False):
        """``detect``'s outputs and the backbone's trunk features (B, V, C, h', w'), which the algebraic head reads."""
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
        coords, peaks = self._decode(heatmaps)
        return {"heatmaps": heatmaps, "pred_2d": heatmap_to_image(coords, self.backbone.stride),
                "confidence_2d": peaks.clamp(0.0, 1.0), **extra}, trunk

    def losses(self, outputs, batch):
        """``heatmap``: MSE against Gaussians at the exact 2D of every joint in the crop; ``joint_error_3d`` (m) or
        ``smooth_mse_3d`` (cm^2)."""
        losses, targets = {}, self.targets(batch)
        if self.heatmap_loss_weight > 0:
            exact = targets["target_2d"]
            labelled = torch.isfinite(exact).all(-1)                   # NaN: a joint without truth, weight 0
            losses["heatmap"] = self.heatmap_loss_weight * self.heatmap_loss(
                outputs["heatmaps"], exact, labelled.to(exact.dtype))
        if self.loss_3d_weight > 0:
            pred, target, valid = outputs["pred_3d"], targets["target_3d"], outputs["valid_3d"]
            if self.loss_3d == "smooth_mse":
                losses["smooth_mse_3d"] = self.loss_3d_weight * smooth_mse_cm(
                    pred, target, valid, self.smooth_mse_threshold).float()
            else:
                losses["joint_error_3d"] = self.loss_3d_weight * mean_joint_error_m(pred, target, valid).float()
        return losses
