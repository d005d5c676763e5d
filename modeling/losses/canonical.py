"""The losses of the normalised-pose lifters (Zimmermann & Brox 2017, as lmb-freiburg/hand3d's
``training_lifting.py`` and Epipolar Transformers' ``modeling/model.py`` train them).

Targets are root-relative camera-frame poses divided by a bone length (``normalised``), their canonical frame
(``core.geometry.rotation.canonical_frame``) and the rotation back to the camera frame.

- ``normalised_mse``: the "Direct" variant's mean squared error of the normalised coordinates.
- ``canonical_mses``: the "Proposed" variant's mean squared error of the canonical coordinates plus that of the
  nine entries of the rotation matrix, weighted 1 : 1 as both references do.

Each mean runs over the joints (or samples) whose target is present (``core.missing_joints``): a target joint
missing from the data, or a sample whose canonical frame is undefined, adds nothing. Deviation from Epipolar
Transformers: its 3D losses multiply prediction and target by the 2D visibility of each joint (so an occluded
joint's 3D is not supervised, yet counts in the mean); hand3d, followed here, supervises every joint.
"""
from typing import Dict

from torch import Tensor

from core.missing_joints import filled, masked_mean, present_joints


def _mse(pred: Tensor, target: Tensor) -> Tensor:
    """(..., N, D) -> the mean squared error over the entries of the rows whose target is finite."""
    present = present_joints(target)
    return masked_mean((pred - filled(target, present, pred)).pow(2).mean(-1), present)


def normalised_mse(pred: Tensor, target: Tensor) -> Tensor:
    """(..., J, 3) normalised poses -> their mean squared error (units: the bone length squared)."""
    return _mse(pred, target.to(pred.dtype))


def canonical_mses(canonical: Tensor, rotation: Tensor, canonical_target: Tensor,
                   rotation_target: Tensor) -> Dict[str, Tensor]:
    """(..., J, 3) canonical poses and (..., 3, 3) rotations against their targets -> ``mse_canonical`` and
    ``mse_rotation`` (the mean over the nine entries of the samples whose target rotation is defined)."""
    entries = rotation.flatten(-2)[..., None, :]                                   # (..., 1, 9): one row a sample
    return {"mse_canonical": _mse(canonical, canonical_target.to(canonical.dtype)),
            "mse_rotation": _mse(entries, rotation_target.to(rotation.dtype).flatten(-2)[..., None, :])}
