"""2D-to-3D lifters; importing the package registers them in ``LIFTERS``."""
from modeling.lifters import linear, poseformer  # noqa: F401
