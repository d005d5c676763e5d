"""2D-to-3D lifters; importing the package registers them in ``LIFTERS``."""
from modeling.lifters import esmformer, linear, pose3d, poseformer  # noqa: F401
