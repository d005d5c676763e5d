"""Heads that turn 2D evidence into 3D; importing the package registers them in ``HEADS``."""
from modeling.heads import dlt  # noqa: F401
