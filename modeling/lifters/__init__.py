"""2D-to-3D lifters; importing the package registers them in ``LIFTERS``."""
from modeling.lifters import esmformer, image_canonical, lcn, linear, pose3d, poseformer, scoremap, semgcn  # noqa: F401
