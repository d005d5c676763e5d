"""The few training steps the pipeline tests take to show that a pipeline learns from its losses."""
import torch


def training_losses(model, batch, steps: int, lr: float, optimiser=torch.optim.Adam, loss: str = None) -> list:
    """The loss (the sum of the pipeline's losses, or the one named ``loss``) before each of ``steps`` steps on
    ``batch``."""
    optimiser = optimiser(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        parts = model.losses(model(batch, **model.truth_inputs(batch)), batch)
        total = parts[loss] if loss else sum(parts.values())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    return losses
