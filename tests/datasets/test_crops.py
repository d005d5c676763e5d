import cv2
import numpy as np
import pytest
import torch

from datasets import DatasetError
from datasets.crops import inside_crop, joints_box, random_zoom_rotation, read_rgb, square_crop_affines


def apply(affine, points):
    return points @ affine[:, :2].T + affine[:, 2]


def test_crop_maps_its_square_onto_the_output():
    affine = square_crop_affines(torch.tensor([[300.0, 200.0]]), torch.tensor([100.0]), 64)[0]
    corners = torch.tensor([[250.0, 150.0], [350.0, 250.0], [300.0, 200.0]], dtype=torch.float64)
    assert torch.allclose(apply(affine, corners), torch.tensor([[0.0, 0.0], [64.0, 64.0], [32.0, 32.0]],
                                                               dtype=torch.float64))


def test_zoom_and_rotation_act_about_the_crop_centre():
    centre = torch.tensor([[300.0, 200.0]])
    affine = square_crop_affines(centre, torch.tensor([100.0]), 64, zoom=torch.tensor([2.0]),
                                 rotation_deg=torch.tensor([90.0]))[0]
    moved = apply(affine, torch.tensor([[310.0, 200.0], [300.0, 200.0]], dtype=torch.float64))
    # 10 px right of the centre -> 0.64 * 2 * 10 px, rotated by 90 degrees (x -> y in y-down pixels)
    assert torch.allclose(moved, torch.tensor([[32.0, 32.0 + 12.8], [32.0, 32.0]], dtype=torch.float64), atol=1e-9)


def test_warping_an_image_moves_a_dot_where_the_affine_says():
    image = np.zeros((240, 320), np.float32)
    dot = np.array([201.0, 97.0])
    image[97, 201] = 1.0
    image = cv2.GaussianBlur(image, (0, 0), 3.0)
    affine = square_crop_affines(torch.tensor([[180.0, 110.0]]), torch.tensor([120.0]), 96,
                                 zoom=torch.tensor([1.2]), rotation_deg=torch.tensor([25.0]))[0]
    crop = cv2.warpAffine(image, affine.numpy(), (96, 96), flags=cv2.INTER_LINEAR)
    expected = apply(affine, torch.from_numpy(dot)[None]).numpy()[0]
    ys, xs = np.mgrid[:96, :96]
    weights = crop * (np.hypot(xs - expected[0], ys - expected[1]) < 12)
    centroid = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
    assert np.allclose(centroid, expected, atol=0.05)


def test_bad_crops_are_rejected():
    with pytest.raises(ValueError, match="sides positive"):
        square_crop_affines(torch.tensor([[0.0, 0.0]]), torch.tensor([0.0]), 64)
    with pytest.raises(ValueError, match=r"\(V, 2\)"):
        square_crop_affines(torch.zeros(3), torch.ones(3), 64)


def test_random_zoom_rotation_ranges():
    torch.manual_seed(0)
    zoom, rotation = random_zoom_rotation(4000, 0.25, 30.0)
    assert zoom.min() >= 0.75 and zoom.max() <= 1.25
    assert rotation.abs().max() <= 60.0
    assert 0.35 < (rotation == 0).float().mean() < 0.45


def test_the_joints_box_leaves_joints_without_coordinates_out():
    nan = float("nan")
    pixels = torch.tensor([[[0.0, 0.0], [10.0, 4.0], [nan, 1.0]],           # a box 10 x 4 (the NaN joint left out)
                           [[nan, nan]] * 3,                                  # no joint: the whole image
                           [[5.0, 5.0]] * 3])                                 # one point: no box, the whole image
    centre, side = joints_box(pixels, torch.tensor([100.0, 50.0]), 1.2)
    assert centre.tolist() == [[5.0, 2.0], [50.0, 25.0], [50.0, 25.0]]
    assert side.tolist() == pytest.approx([12, 100, 100])
    assert inside_crop(torch.tensor([[0.0, 63.0], [-0.1, 5.0], [nan, 5.0], [63.5, 0.0]]), 64).tolist() == [1, 0, 0, 0]


def test_an_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    for path in (bad, tmp_path / "absent.jpg"):
        with pytest.raises(DatasetError) as err:
            read_rgb(path, "KEY")
        assert str(err.value) == f"image '{path}' is missing or unreadable (KEY)"
