"""Training losses; importing the package registers them in ``LOSSES``."""
from modeling.losses import heatmap  # noqa: F401
