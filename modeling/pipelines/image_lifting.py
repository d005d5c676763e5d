"""The image lifting pipeline: each view's crop -> a ResNet encoder, globally average-pooled -> an image lifter
(Epipolar Transformers' ``img_lifting_rot``, after Boukhayma et al. 2019: ``image_canonical``) -> the pose over a
bone length -> root-relative 3D (``modeling.pipelines.normalised_lifting``)."""
from typing import Dict

from torch import Tensor, nn

from core.registry import PIPELINES
from core.skeleton import H36M17, Skeleton, skeleton_of
from modeling.backbones.resnet import ResNetEncoder
from modeling.pipelines.base import PipelineConfigError
from modeling.pipelines.lifter_config import build_lifter
from modeling.pipelines.normalised_lifting import NormalisedLiftingPipeline


@PIPELINES.register("image_lifting")
class ImageLiftingPipeline(NormalisedLiftingPipeline):
    """Lifting of every view's crop through the layer4 features of a torchvision ResNet (``backbone``, a
    ``ResNetEncoder`` of MODEL.BACKBONE resnet: its DEPTH and PRETRAINED; the reference: ResNet-50 from ImageNet
    weights, 256 x 256 crops), averaged over the feature map. Lifting, scale and losses:
    ``NormalisedLiftingPipeline``. The crops are used as the data set cuts them; an augmentation that rotates a crop
    is refused, since the camera-frame target does not turn with it (the reference trains without augmentation)."""

    parts = "MODEL.BACKBONE.NAME resnet and MODEL.LIFTER.NAME {lifters} (image features), with MODEL.REFINER.NAME none"

    def __init__(self, backbone: ResNetEncoder, lifter: nn.Module, skeleton: Skeleton = H36M17,
                 scale: str = "truth"):
        super().__init__(lifter, skeleton, scale)
        self.backbone = backbone

    @classmethod
    def from_config(cls, cfg) -> "ImageLiftingPipeline":
        m, d, skeleton = cfg.MODEL, cfg.DATASETS, skeleton_of(cfg)
        if m.BACKBONE.NAME != "resnet" or d.MODE != "images" or d.FRAMES != 1:
            raise PipelineConfigError(f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' lifts the ResNet features of image crops: "
                                      "set MODEL.BACKBONE.NAME resnet, DATASETS.MODE images and DATASETS.FRAMES 1")
        if d.AUGMENT:
            raise PipelineConfigError("DATASETS.AUGMENT rotates the crops but not the camera-frame 3D that "
                                      f"MODEL.LIFTER.NAME '{m.LIFTER.NAME}' is trained on: set DATASETS.AUGMENT False")
        try:
            backbone = ResNetEncoder(m.BACKBONE.DEPTH, m.BACKBONE.PRETRAINED)
        except ValueError as err:
            raise PipelineConfigError(f"MODEL.BACKBONE: {err}") from None
        lifter = build_lifter(cfg, in_features=backbone.trunk_channels, num_joints=skeleton.num_joints)
        return cls(backbone=backbone, lifter=lifter, skeleton=skeleton, scale=m.LIFTER.SCALE)

    def _lift(self, batch) -> Dict[str, Tensor]:
        images = batch["images"]                                                     # (B, V, 3, S, S)
        features = self.backbone(images).mean((-2, -1))
        outputs = self.lifter(features.flatten(0, 1))
        return {key: value.unflatten(0, images.shape[:2]) for key, value in outputs.items()}
