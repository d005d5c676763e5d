import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from core.engine.checkpoint import Checkpointer
from core.engine.logger import TensorBoard
from core.engine.trainer import Trainer, TrainSettings
from modeling.pipelines import Pipeline


class ToyPipeline(Pipeline):
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


@pytest.mark.parametrize("keep, kept", [(1, ["model_epoch0003.pth"]),
                                        (2, ["model_epoch0002.pth", "model_epoch0003.pth"])])
def test_only_the_newest_periodic_checkpoints_stay(tmp_path, keep, kept):
    model = ToyPipeline()
    trainer = make(tmp_path, model, max_epochs=4)
    trainer.checkpointer.keep = keep
    trainer.train(loader())
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == kept + ["model_final.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


def test_gradient_clipping_bounds_each_step(tmp_path):
    model = ToyPipeline()
    make(tmp_path, model, max_epochs=1, grad_clip=0.01).train(loader(8))
    assert 0 < model.w.item() <= 0.5 * 0.01 + 1e-9  # one SGD step of at most lr x max norm


def test_non_finite_loss_stops_training(tmp_path):
    with pytest.raises(FloatingPointError, match="mse=inf"):
        make(tmp_path, ToyPipeline(scale=float("inf"))).train(loader())


def test_validation_keeps_the_best_epoch(tmp_path):
    scores = iter([5.0, 2.0, 3.0])
    model = ToyPipeline()
    trainer = make(tmp_path, model)
    trainer.validate = lambda: next(scores)
    trainer.train(loader())
    best = torch.load(tmp_path / "model_best.pth", weights_only=True)
    assert best["epoch"] == 2 and best["best"] == {"score": 2.0, "epoch": 2}
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"  # resuming continues from the last epoch
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert final["best"] == {"score": 2.0, "epoch": 2}


def test_resumed_validation_compares_with_the_best_so_far(tmp_path):
    trainer = make(tmp_path, ToyPipeline())
    trainer.validate = lambda: 4.0
    trainer.train(loader(), start_epoch=2, best={"score": 1.0, "epoch": 1})
    assert not (tmp_path / "model_best.pth").exists()


def test_each_epoch_starts_with_the_pipeline_hook(tmp_path):
    model = ToyPipeline()
    seen = []
    model.start_epoch = seen.append
    make(tmp_path, model).train(loader(), start_epoch=1)
    assert seen == [1, 2]
