import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from core.engine.checkpoint import Checkpointer
from core.engine.logger import TensorBoard
from core.engine.trainer import Trainer, TrainSettings


class ToyPipeline(nn.Module):
    """Fits y = 3 x; ``scale`` multiplies the loss (inf makes it non-finite)."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.scale = scale

    def forward(self, batch):
        return {"pred": self.w * batch["x"]}

    def losses(self, outputs, batch):
        return {"mse": self.scale * torch.mean((outputs["pred"] - 3 * batch["x"]) ** 2)}


def loader(size=32):
    samples = [{"x": x} for x in torch.linspace(-1, 1, size)]
    return DataLoader(samples, batch_size=8)


def make(tmp_path, model, **settings):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 1.0)
    trainer = Trainer(model, optimizer, scheduler, Checkpointer(str(tmp_path), model, optimizer, scheduler),
                      TensorBoard(None), TrainSettings(**{"max_epochs": 3, "log_period": 2, **settings}),
                      torch.device("cpu"))
    return trainer


def test_trains_and_checkpoints(tmp_path):
    model = ToyPipeline()
    iterations = make(tmp_path, model).train(loader())
    assert iterations == 12 and abs(model.w.item() - 3) < 0.1
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert (tmp_path / "model_epoch0001.pth").is_file() and (tmp_path / "model_epoch0002.pth").is_file()


def test_gradient_clipping_bounds_each_step(tmp_path):
    model = ToyPipeline()
    make(tmp_path, model, max_epochs=1, grad_clip=0.01).train(loader(8))
    assert 0 < model.w.item() <= 0.5 * 0.01 + 1e-9  # one SGD step of at most lr x max norm


def test_non_finite_loss_stops_training(tmp_path):
    with pytest.raises(FloatingPointError, match="mse=inf"):
        make(tmp_path, ToyPipeline(scale=float("inf"))).train(loader())
