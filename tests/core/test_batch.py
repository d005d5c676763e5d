import numpy as np
import torch

from core.geometry.cameras import Cameras
from core.batch import collate_samples, move_batch
from core.images import to_image_tensor, to_uint8_images


def test_collate_and_move():
    cams = Cameras.create(torch.eye(3).expand(2, 3, 3), torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    samples = [{"x": torch.full((2,), float(i)), "a": np.ones(3) * i, "cameras": cams,
                "meta": {"subject": f"S{i}", "frame": i}} for i in range(3)]
    batch = collate_samples(samples)
    assert batch["x"].shape == (3, 2) and batch["a"].shape == (3, 3) and batch["cameras"].batch_shape == (3, 2)
    assert batch["meta"] == {"subject": ["S0", "S1", "S2"], "frame": [0, 1, 2]}
    moved = move_batch(batch, torch.device("cpu"))
    assert moved["meta"] is batch["meta"] and isinstance(moved["cameras"], Cameras)


def test_image_normalisation_round_trip():
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    tensor = to_image_tensor(images)
    assert tensor.shape == (2, 3, 8, 9) and abs(float(tensor.mean())) < 1.0
    assert np.array_equal(to_uint8_images(tensor), images)
