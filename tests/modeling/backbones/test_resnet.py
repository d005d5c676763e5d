"""Tests of the ResNet + SimpleBaseline heatmap backbone (tiny inputs, CPU, no downloads)."""
import urllib.error

import pytest
import torch
import torchvision

from core.registry import BACKBONES
from modeling.backbones.resnet import PretrainedWeightsError, ResNetHeatmap


@pytest.fixture(scope="module")
def net18():
    torch.manual_seed(0)
    return ResNetHeatmap(depth=18, num_joints=5).eval()


def test_registered():
    import modeling.backbones  # noqa: F401
    assert BACKBONES.get("resnet") is ResNetHeatmap


def test_output_shapes_and_strides_resnet18(net18):
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = net18(images)
    assert net18.stride == 4
    assert (net18.early_channels, net18.trunk_channels, net18.late_channels) == (64, 512, 256)
    assert out["heatmaps"].shape == (2, 5, 16, 24)
    assert out["features"].shape == (2, 256, 16, 24)
    assert out["trunk_features"].shape == (2, 512, 2, 3)


def test_leading_dimensions_batch_and_views(net18):
    images = torch.randn(2, 3, 3, 64, 64)  # (B, V, 3, H, W)
    with torch.no_grad():
        out = net18(images)
        flat = net18(images.reshape(6, 3, 64, 64))
    assert out["heatmaps"].shape == (2, 3, 5, 16, 16)
    assert torch.allclose(out["heatmaps"].reshape(6, 5, 16, 16), flat["heatmaps"])


def test_resnet50_channels_and_stage_shapes():
    net = ResNetHeatmap(depth=50, num_joints=17)
    assert (net.early_channels, net.trunk_channels, net.late_channels, net.stride) == (256, 2048, 256, 4)
    with torch.no_grad():
        early = net.forward_early(torch.randn(1, 3, 32, 32))
    assert early.shape == (1, 256, 8, 8)


def test_resnet50_parameter_count_matches_simple_baseline():
    # Xiao et al. (2018) table: ResNet-50 SimpleBaseline has 34.0 M parameters.
    net = ResNetHeatmap(depth=50, num_joints=17)
    count = sum(p.numel() for p in net.parameters())
    assert abs(count - 34.0e6) < 0.1e6


def test_stages_compose_to_forward(net18):
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net18(images)
        early = net18.forward_early(images)
        late = net18.forward_late(early)
        heatmaps = net18.forward_final(late)
        trunk = net18.forward_trunk(early)
    assert early.shape == (2, net18.early_channels, 16, 16)
    assert torch.equal(late, out["features"])
    assert torch.equal(heatmaps, out["heatmaps"])
    assert torch.equal(trunk, out["trunk_features"])
    assert torch.equal(net18.forward_head(trunk), late)


def test_head_initialisation_follows_reference():
    torch.manual_seed(0)
    net = ResNetHeatmap(depth=18, num_joints=17)
    deconvs = [m for m in net.deconv_layers if isinstance(m, torch.nn.ConvTranspose2d)]
    norms = [m for m in net.deconv_layers if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(deconvs) == 3 and len(norms) == 3
    for deconv in deconvs:
        assert deconv.bias is None
        assert deconv.kernel_size == (4, 4) and deconv.stride == (2, 2) and deconv.padding == (1, 1)
        assert abs(deconv.weight.std().item() - 0.001) < 1e-4
        assert abs(deconv.weight.mean().item()) < 1e-5
    for norm in norms:
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    final = net.final_layer
    assert final.kernel_size == (1, 1) and final.out_channels == 17
    assert abs(final.weight.std().item() - 0.001) < 2e-4
    assert torch.all(final.bias == 0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = ResNetHeatmap(depth=18, num_joints=3).train()
    out = net(torch.randn(2, 3, 64, 64))
    (out["heatmaps"].square().sum() + out["trunk_features"].mean()).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert net.trunk.conv1.weight.grad.abs().sum() > 0
    assert net.final_layer.weight.grad.abs().sum() > 0


def test_bad_inputs_and_arguments(net18):
    with pytest.raises(ValueError, match="multiples of 32"):
        net18(torch.randn(1, 3, 60, 64))
    with pytest.raises(ValueError, match="3, H, W"):
        net18(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="early features"):
        net18.forward_late(torch.randn(1, 32, 16, 16))
    with pytest.raises(ValueError, match="depth"):
        ResNetHeatmap(depth=20)
    with pytest.raises(ValueError, match="deconv_kernel"):
        ResNetHeatmap(depth=18, deconv_kernel=5)


@pytest.mark.parametrize("deconv_kernel", [2, 3, 4])
def test_deconv_kernels_keep_stride(deconv_kernel):
    net = ResNetHeatmap(depth=18, num_joints=2, deconv_channels=16, deconv_kernel=deconv_kernel, final_kernel=3)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64))["heatmaps"].shape == (1, 2, 16, 16)


# --- pretrained weights ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(123)
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(source.state_dict(), path)
    return path, source.state_dict()


def test_local_file_loads_trunk(resnet18_file):
    path, state = resnet18_file
    torch.manual_seed(0)
    before = ResNetHeatmap(depth=18).trunk.layer3[0].conv1.weight.clone()
    torch.manual_seed(0)
    net = ResNetHeatmap(depth=18, pretrained=str(path))
    assert not torch.equal(before, net.trunk.layer3[0].conv1.weight)
    for key, value in net.trunk.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_local_file_without_batch_counters_loads(resnet18_file, tmp_path):
    _, state = resnet18_file
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    net = ResNetHeatmap(depth=18, pretrained=str(path))
    assert torch.equal(net.trunk.bn1.running_mean, state["bn1.running_mean"])


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(PretrainedWeightsError, match="not found.*nope.pth"):
        ResNetHeatmap(depth=18, pretrained=str(missing))


def test_wrong_depth_file_lists_keys(resnet18_file):
    path, _ = resnet18_file
    with pytest.raises(PretrainedWeightsError, match=r"does not fit the resnet34 trunk.*missing keys \['layer1.2"):
        ResNetHeatmap(depth=34, pretrained=str(path))
    with pytest.raises(PretrainedWeightsError, match="wrong shapes.*conv1.weight"):
        ResNetHeatmap(depth=50, pretrained=str(path))


def test_unexpected_keys_are_listed(resnet18_file, tmp_path):
    _, state = resnet18_file
    path = tmp_path / "extra.pth"
    torch.save({**state, "head.weight": torch.zeros(3)}, path)
    with pytest.raises(PretrainedWeightsError, match=r"unexpected keys \['head.weight'\]"):
        ResNetHeatmap(depth=18, pretrained=str(path))


def test_malformed_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="cannot read.*garbage.pth"):
        ResNetHeatmap(depth=18, pretrained=str(garbage))
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(PretrainedWeightsError, match="not a state dict"):
        ResNetHeatmap(depth=18, pretrained=str(not_a_dict))


def test_imagenet_offline_error_explains_local_file(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    with pytest.raises(PretrainedWeightsError) as info:
        ResNetHeatmap(depth=18, pretrained="imagenet")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message    # a configuration mistake, one line
    assert message.startswith("PRETRAINED imagenet: could not get the ImageNet weights of resnet18 from torchvision "
                              f"(<urlopen error no network>); download {url} where there is network access, then "
                              "give the file as MODEL.BACKBONE.PRETRAINED /path/to/resnet18-")
    assert message.endswith("or train from scratch with MODEL.BACKBONE.PRETRAINED none")


def test_imagenet_weights_go_through_strict_loader(monkeypatch):
    torch.manual_seed(7)
    state = torchvision.models.resnet18(weights=None).state_dict()
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", lambda self, *a, **k: state)
    net = ResNetHeatmap(depth=18, pretrained="imagenet")
    assert torch.equal(net.trunk.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
