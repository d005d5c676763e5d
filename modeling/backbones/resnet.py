"""ResNet heatmap backbone: the "Simple Baseline" of Xiao et al. (ECCV 2018).

A torchvision ResNet-18/34/50/101/152 trunk (``conv1`` .. ``layer4``; no average pool, no
classifier) followed by the SimpleBaseline head: ``num_deconv`` x [4x4 transposed convolution of
stride 2 (padding 1, no bias), batch norm, ReLU] with ``deconv_channels`` channels, then a
``final_kernel`` x ``final_kernel`` convolution to one heatmap per joint. With the published setting
(3 deconvolutions of 256 channels) a 256x256 crop gives 64x64 heatmaps (output stride 4).

The network is exposed in stages so a fusion layer can be inserted after ``layer1`` ("early") or
before the final convolution ("late")::

    early   = net.forward_early(images)   # stride 4,  early_channels (64 for ResNet-18/34, 256 for 50+)
    trunk   = net.forward_trunk(early)    # stride 32, trunk_channels (512 for ResNet-18/34, 2048 for 50+)
    late    = net.forward_head(trunk)     # stride 4,  late_channels (= deconv_channels)
    heatmap = net.forward_final(late)     # stride 4,  num_joints

``forward_late(early)`` is ``forward_head(forward_trunk(early))``. ``ResNetEncoder`` is the trunk alone (its first two
stages and the pretrained weights), which the image lifting pipeline pools. Every stage takes any leading
dimensions (``(B, V, C, H, W)`` as well as ``(N, C, H, W)``). Images must have 3 channels and a height
and width divisible by 32, so that the heatmaps cover the crop exactly at stride 4.

Initialisation follows the reference code (microsoft/human-pose-estimation.pytorch,
``pose_resnet.py``): transposed convolutions normal(std 0.001), their batch norms weight 1 and bias
0, final convolution normal(std 0.001) with bias 0; the trunk keeps torchvision's initialisation
unless pretrained weights are loaded.

``pretrained``: ``"none"``; ``"imagenet"`` (torchvision's ``ResNet{depth}_Weights.IMAGENET1K_V1``,
downloaded by torchvision, or read from its cache ``~/.cache/torch/hub/checkpoints``); or the path of
a torchvision ResNet state dict (``.pth``), loaded strictly into the trunk (``fc.*`` keys are
ignored). Weights that cannot be had raise ``PretrainedWeightsError`` saying what to do.

Deviations from the reference: a single ``deconv_channels`` value for all deconvolutions (the
reference allows a list); the trunk is torchvision's (ResNet v1.5: stride on the 3x3 convolution of
the bottleneck, as the reference's default "pytorch" style); the trunk lives under ``trunk.``, so a
reference checkpoint's keys need the prefix ``trunk.`` added (its ``deconv_layers.*`` and
``final_layer.*`` names are kept).
"""
from pathlib import Path
from typing import Dict, Mapping

import torch
import torchvision
from torch import Tensor, nn

from core.registry import BACKBONES

DEPTHS = (18, 34, 50, 101, 152)
# SimpleBaseline's transposed-convolution settings (padding, output padding) per kernel size; each doubles the size.
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
_TRUNK_STRIDE = 32
_EARLY_STRIDE = 4


class PretrainedWeightsError(ValueError):
    """Pretrained weights that cannot be had or do not fit the network (a configuration mistake: one line)."""


class ResNetTrunk(nn.Module):
    """The convolutional part of a torchvision ResNet; its state-dict keys are torchvision's minus ``fc.*``."""

    def __init__(self, resnet: torchvision.models.ResNet):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def stem_and_layer1(self, images: Tensor) -> Tensor:
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(images)))))

    def layers2to4(self, features: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(features)))


def _apply_2d(module, x: Tensor) -> Tensor:
    """Apply a (N, C, H, W) module to (..., C, H, W), keeping the leading dimensions."""
    lead = x.shape[:-3]
    y = module(x.reshape(-1, *x.shape[-3:]))
    return y.reshape(*lead, *y.shape[1:])


def _check_depth(depth: int, name: str) -> None:
    if depth not in DEPTHS:
        raise ValueError(f"{name}: depth must be one of {DEPTHS}, got {depth}")


def _check_features(x: Tensor, channels: int, name: str) -> None:
    if x.dim() < 4 or x.shape[-3] != channels:
        raise ValueError(f"{name}: expected a tensor (..., {channels}, H, W), got shape {tuple(x.shape)}")


class ResNetEncoder(nn.Module):
    """A torchvision ResNet trunk with its pretrained weights: images (..., 3, H, W) -> layer1 features
    (``forward_early``, stride 4) -> layer4 features (``forward_trunk``, stride 32). The heatmap backbone below adds
    its head; the image lifting pipeline pools the layer4 features."""

    def __init__(self, depth: int, pretrained: str = "none"):
        super().__init__()
        _check_depth(depth, type(self).__name__)
        self.depth = depth
        self.channels_last = False  # MODEL.CHANNELS_LAST: convert the images to the channels_last memory format
        self.trunk = ResNetTrunk(getattr(torchvision.models, f"resnet{depth}")(weights=None))
        expansion = 1 if depth < 50 else 4
        self.early_channels = 64 * expansion
        self.trunk_channels = 512 * expansion
        self.load_pretrained(pretrained)

    # --- stages -------------------------------------------------------------------------------
    def forward_early(self, images: Tensor) -> Tensor:
        """Images (..., 3, H, W), H and W multiples of 32 -> features after layer1 (..., early_channels, H/4, W/4)."""
        _check_features(images, 3, f"{type(self).__name__} images")
        height, width = images.shape[-2:]
        if height % _TRUNK_STRIDE or width % _TRUNK_STRIDE:
            raise ValueError(f"{type(self).__name__} images: height and width must be multiples of {_TRUNK_STRIDE}, "
                             f"got {height}x{width}")
        if self.channels_last:  # the convolutions keep the format, so only the input needs converting
            lead = images.shape[:-3]
            images = images.reshape(-1, *images.shape[-3:]).contiguous(memory_format=torch.channels_last)
            return _apply_2d(self.trunk.stem_and_layer1, images).reshape(*lead, -1, height // 4, width // 4)
        return _apply_2d(self.trunk.stem_and_layer1, images)

    def forward_trunk(self, early: Tensor) -> Tensor:
        """Features after layer1 (stride 4) -> layer4 output (..., trunk_channels, H/32, W/32)."""
        _check_features(early, self.early_channels, f"{type(self).__name__} early features")
        return _apply_2d(self.trunk.layers2to4, early)

    def forward(self, images: Tensor) -> Tensor:
        """Images (..., 3, H, W) -> layer4 features (..., trunk_channels, H/32, W/32)."""
        return self.forward_trunk(self.forward_early(images))

    # --- pretrained weights -------------------------------------------------------------------
    def load_pretrained(self, pretrained: str) -> None:
        """Load trunk weights: ``"none"`` (nothing), ``"imagenet"`` or the path of a torchvision ResNet state dict."""
        if pretrained == "none":
            return
        if pretrained == "imagenet":
            state_dict, source = self._imagenet_state_dict(), f"torchvision ImageNet weights for resnet{self.depth}"
        else:
            state_dict, source = _read_state_dict(Path(pretrained)), str(pretrained)
        self._load_trunk(state_dict, source)

    def _imagenet_state_dict(self) -> Mapping[str, Tensor]:
        weights = getattr(torchvision.models, f"ResNet{self.depth}_Weights").IMAGENET1K_V1
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except Exception as error:  # any failure to fetch: offline, proxy, corrupt cache, ...
            name = weights.url.rsplit("/", 1)[-1]
            reason = " ".join(str(error).split()) or type(error).__name__
            raise PretrainedWeightsError(
                f"PRETRAINED imagenet: could not get the ImageNet weights of resnet{self.depth} from torchvision "
                f"({reason}); download {weights.url} where there is network access, then give the file as "
                f"MODEL.BACKBONE.PRETRAINED /path/to/{name} (or put it in torchvision's cache, "
                f"{Path(torch.hub.get_dir()) / 'checkpoints' / name}), or train from scratch with "
                "MODEL.BACKBONE.PRETRAINED none") from error

    def _load_trunk(self, state_dict: Mapping[str, Tensor], source: str) -> None:
        given = {key: value for key, value in state_dict.items() if not key.startswith("fc.")}
        expected = self.trunk.state_dict()
        missing = sorted(key for key in expected if key not in given and not key.endswith("num_batches_tracked"))
        unexpected = sorted(key for key in given if key not in expected)
        wrong_shape = sorted(f"{key} {tuple(given[key].shape)} (expected {tuple(value.shape)})"
                             for key, value in expected.items() if key in given and given[key].shape != value.shape)
        if missing or unexpected or wrong_shape:
            raise PretrainedWeightsError(
                f"{source} does not fit the resnet{self.depth} trunk (is it a torchvision resnet{self.depth} "
                f"state dict?): missing keys {missing}; unexpected keys {unexpected}; wrong shapes {wrong_shape}")
        for key, value in expected.items():  # old torchvision files have no BN batch counters
            given.setdefault(key, torch.zeros_like(value))
        self.trunk.load_state_dict(given, strict=True)


@BACKBONES.register("resnet")
class ResNetHeatmap(ResNetEncoder):
    """ResNet + SimpleBaseline deconvolution head: images (..., 3, H, W) -> heatmaps (..., J, H/4, W/4)."""

    def __init__(self, depth: int, num_joints: int = 17, pretrained: str = "none", deconv_channels: int = 256,
                 num_deconv: int = 3, deconv_kernel: int = 4, final_kernel: int = 1):
        _check_depth(depth, "ResNetHeatmap")
        if num_joints < 1 or deconv_channels < 1:
            raise ValueError(f"ResNetHeatmap: num_joints and deconv_channels must be positive, "
                             f"got {num_joints} and {deconv_channels}")
        if not 1 <= num_deconv <= 5:
            raise ValueError(f"ResNetHeatmap: num_deconv must be in 1..5 (output stride 32 / 2**num_deconv), "
                             f"got {num_deconv}")
        if deconv_kernel not in _DECONV_PADDING:
            raise ValueError(f"ResNetHeatmap: deconv_kernel must be one of {sorted(_DECONV_PADDING)}, "
                             f"got {deconv_kernel}")
        if final_kernel not in (1, 3):
            raise ValueError(f"ResNetHeatmap: final_kernel must be 1 or 3, got {final_kernel}")
        super().__init__(depth, pretrained)
        self.num_joints = num_joints
        self.late_channels = deconv_channels
        self.stride = _TRUNK_STRIDE // 2 ** num_deconv

        padding, output_padding = _DECONV_PADDING[deconv_kernel]
        layers = []
        for index in range(num_deconv):
            layers += [nn.ConvTranspose2d(self.trunk_channels if index == 0 else deconv_channels, deconv_channels,
                                          deconv_kernel, stride=2, padding=padding, output_padding=output_padding,
                                          bias=False),
                       nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(deconv_channels, num_joints, final_kernel, padding=final_kernel // 2)
        self._init_head()

    def _init_head(self) -> None:
        for module in self.deconv_layers.modules():
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.normal_(module.weight, std=0.001)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward_head(self, trunk: Tensor) -> Tensor:
        """Layer4 output (stride 32) -> deconvolved features (..., late_channels, H/stride, W/stride)."""
        _check_features(trunk, self.trunk_channels, "ResNetHeatmap trunk features")
        return _apply_2d(self.deconv_layers, trunk)

    def forward_late(self, early: Tensor) -> Tensor:
        """Features after layer1 -> features before the final convolution (..., late_channels, H/stride, W/stride)."""
        return self.forward_head(self.forward_trunk(early))

    def forward_final(self, late: Tensor) -> Tensor:
        """Features before the final convolution -> heatmaps (..., num_joints, H/stride, W/stride)."""
        _check_features(late, self.late_channels, "ResNetHeatmap late features")
        return _apply_2d(self.final_layer, late)

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        """Images (..., 3, H, W) -> dict(heatmaps (..., J, h, w), features (..., late_channels, h, w),
        trunk_features (..., trunk_channels, H/32, W/32)), with h, w = H/stride, W/stride."""
        trunk = self.forward_trunk(self.forward_early(images))
        features = self.forward_head(trunk)
        return {"heatmaps": self.forward_final(features), "features": features, "trunk_features": trunk}


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    if not path.is_file():
        raise PretrainedWeightsError(f"pretrained weights file not found: {path} (MODEL.BACKBONE.PRETRAINED takes "
                                     f"'none', 'imagenet' or the path of a torchvision ResNet state dict .pth)")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling / zip errors of a malformed file
        raise PretrainedWeightsError(f"cannot read pretrained weights {path}: {error}") from error
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(key, str) and isinstance(value, Tensor) for key, value in state_dict.items()):
        raise PretrainedWeightsError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    return state_dict
