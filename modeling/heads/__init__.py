"""Heads that turn 2D evidence into 3D; importing the package registers them in ``HEADS``."""
from modeling.heads import dlt  # noqa: F401
from modeling.heads import algebraic  # noqa: F401
from modeling.heads import ransac  # noqa: F401
from modeling.heads import optimised  # noqa: F401
