import pytest
import torch

from core.engine.solver import build_optimizer, build_scheduler


def test_optimizers_and_schedules():
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, "sgd", 0.1, momentum=0.5)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.5
    step = build_scheduler(opt, "step", gamma=0.1, steps=[2], max_epochs=5)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        step.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        build_optimizer(params, "lbfgs", 0.1)
    with pytest.raises(ValueError, match="unknown scheduler 'poly'"):
        build_scheduler(opt, "poly", 0.1, [], 3)
