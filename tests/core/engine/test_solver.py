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


def test_esmformer_schedule_halves_every_fifth_epoch_and_amsgrad_is_adam():
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, "amsgrad", 1.0)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["amsgrad"]
    schedule = build_scheduler(opt, "exponential", gamma=0.95, steps=[], max_epochs=12, halving_period=5)
    rates = []
    for _ in range(11):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    expected = [0.95 ** (e - e // 5) * 0.5 ** (e // 5) for e in range(11)]
    assert rates == pytest.approx(expected)
    assert rates[5] == pytest.approx(0.95 ** 4 * 0.5)


@pytest.mark.parametrize("name", ["adam", "amsgrad", "adamw"])
def test_adam_variants_are_fused_and_update_like_the_per_tensor_loop(name):
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    fused = [torch.nn.Parameter(p.clone()) for p in start]
    plain = [torch.nn.Parameter(p.clone()) for p in start]
    opt = build_optimizer(fused, name, 0.01, weight_decay=0.1)
    reference = type(opt)(plain, lr=0.01, weight_decay=0.1, amsgrad=name == "amsgrad", foreach=False)
    assert opt.param_groups[0]["fused"]
    for _ in range(3):
        grads = [torch.randn_like(p) for p in start]
        for params, optimizer in ((fused, opt), (plain, reference)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
