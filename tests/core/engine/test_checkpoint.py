import pytest
import torch
from torch import nn

from core.engine.checkpoint import Checkpointer, CheckpointError, load_state_strict, read_checkpoint


class _Payload:
    """A class that weights_only loading must refuse to rebuild."""


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_save_resume_round_trip(tmp_path):
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.5)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    ckpt = Checkpointer(str(tmp_path), model, optimizer, scheduler, config_text="SEED: 1\n")
    path = ckpt.save("model_epoch0001", epoch=1, iteration=10)
    assert (tmp_path / "last_checkpoint").read_text() == "model_epoch0001.pth"
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind

    other = _model()
    opt2 = torch.optim.Adam(other.parameters(), lr=0.1)
    sch2 = torch.optim.lr_scheduler.ExponentialLR(opt2, 0.5)
    state = Checkpointer(str(tmp_path), other, opt2, sch2).resume()
    assert state["epoch"] == 1 and state["iteration"] == 10 and state["config"] == "SEED: 1\n"
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)
    assert read_checkpoint(str(path))["format_version"] == 1


def test_resume_without_checkpoint_is_empty(tmp_path):
    assert Checkpointer(str(tmp_path), _model()).resume() == {}


def test_ddp_prefix_is_accepted():
    model = _model()
    state = {f"module.{k}": v for k, v in _model().state_dict().items()}
    load_state_strict(model, state, "x.pth")
    assert torch.equal(model.state_dict()["0.weight"], state["module.0.weight"])


def test_mismatched_checkpoint_is_reported():
    state = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5)).state_dict()
    with pytest.raises(CheckpointError) as err:
        load_state_strict(_model(), state, "other.pth")
    message = str(err.value)
    assert "other.pth" in message and "missing keys: 2.bias, 2.weight" in message
    assert "shape mismatches: " in message and "0.weight (5, 3) vs model (4, 3)" in message


def test_unreadable_and_unsafe_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(str(tmp_path / "none.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth' is not an EpiPose checkpoint: torch.load"):
        read_checkpoint(str(garbage))

    evil = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="evil.pth' is not an EpiPose checkpoint") as err:  # weights_only refuses
        read_checkpoint(str(evil))
    assert "weights_only=False" not in str(err.value) and "\n" not in str(err.value)  # no advice to load unsafely

    bare = tmp_path / "bare.pth"
    torch.save(_model().state_dict(), bare)
    with pytest.raises(CheckpointError, match="bare.pth' is not an EpiPose checkpoint: it holds no 'model'"):
        read_checkpoint(str(bare))


def test_only_the_newest_periodic_checkpoints_are_kept(tmp_path):
    ckpt = Checkpointer(str(tmp_path), _model(), keep=2)
    ckpt.save("model_best", epoch=1, iteration=1, pointer=False)
    for epoch in (1, 2, 3, 9, 10):  # 10 after 9: by number, not by name
        ckpt.save_periodic(epoch, iteration=epoch)
        assert (tmp_path / "last_checkpoint").read_text() == f"model_epoch{epoch:04d}.pth"
    assert [p.name for _, p in ckpt.periodic_checkpoints()] == ["model_epoch0009.pth", "model_epoch0010.pth"]
    assert (tmp_path / "model_best.pth").is_file()
    Checkpointer(str(tmp_path), _model(), keep=0).save_periodic(11, iteration=11)  # 0: every one is kept
    assert len(list(tmp_path.glob("model_epoch*.pth"))) == 3


def test_the_checkpoint_just_written_is_never_pruned_and_the_final_save_prunes_too(tmp_path):
    ckpt = Checkpointer(str(tmp_path), _model(), keep=1)
    ckpt.save_periodic(7, iteration=7)              # left by an earlier, longer run in the same folder
    ckpt.save_periodic(3, iteration=3)
    assert sorted(p.name for p in tmp_path.glob("model_epoch*.pth")) == ["model_epoch0003.pth", "model_epoch0007.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_epoch0003.pth"
    for epoch in (4, 5):                            # as if killed after writing epoch 4, before pruning
        ckpt.save(f"model_epoch{epoch:04d}", epoch, epoch)
    ckpt.save_final(6, iteration=6)
    assert sorted(p.name for p in tmp_path.glob("model_epoch*.pth")) == ["model_epoch0005.pth", "model_epoch0007.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


def test_fine_tuning_may_add_new_modules_only():
    class WithFusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(3, 3)
            self.fusion = nn.Linear(3, 3)
    baseline = {f"backbone.{k}": v for k, v in nn.Linear(3, 3).state_dict().items()}
    model = WithFusion()
    fusion_before = model.fusion.weight.detach().clone()
    kept = load_state_strict(model, baseline, "baseline.pth", new_modules=("fusion",))
    assert kept == ["fusion.bias", "fusion.weight"]
    assert torch.equal(model.backbone.weight, baseline["backbone.weight"])
    assert torch.equal(model.fusion.weight, fusion_before)
    with pytest.raises(CheckpointError, match="missing keys: fusion.bias, fusion.weight"):
        load_state_strict(WithFusion(), baseline, "baseline.pth")
    with pytest.raises(CheckpointError, match="missing keys: backbone.bias"):
        load_state_strict(WithFusion(), {"backbone.weight": baseline["backbone.weight"]}, "x.pth", ("fusion",))
