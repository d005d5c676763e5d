"""2D-to-3D lifters; importing the package registers them in ``LIFTERS``."""
from modeling.lifters import esmformer, lcn, linear, pose3d, poseformer, semgcn  # noqa: F401
