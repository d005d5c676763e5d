import numpy as np

from core.engine.preview import CANVAS_SIDE, preview_sample
from datasets.synthetic.dataset import SyntheticMultiView, SyntheticWorld, WorldSpec


def test_preview_tiles_every_view_and_draws_the_prediction():
    world = SyntheticWorld(WorldSpec(subjects=["S9"], actions=["walk"], frames_per_sequence=3))
    sample = SyntheticMultiView(world)[1]
    plain = preview_sample(sample)
    assert plain.shape == (2 * CANVAS_SIDE, 2 * CANVAS_SIDE, 3) and plain.dtype == np.uint8
    with_prediction = preview_sample(sample, sample["keypoints_3d"][0].numpy() + 30.0)
    assert (with_prediction != plain).any()
    images = SyntheticMultiView(world, mode="images", image_size=48)[1]
    assert preview_sample(images).shape == (96, 96, 3)
