"""Refiners of a lifter's 3D; importing the package registers them in ``REFINERS``."""
from modeling.refiners import erd  # noqa: F401
