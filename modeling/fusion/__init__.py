"""Multi-view feature fusion layers; importing the package registers them in ``FUSIONS``."""
from modeling.fusion import epipolar  # noqa: F401
from modeling.fusion.epipolar import EpipolarTransformer

__all__ = ["EpipolarTransformer"]
