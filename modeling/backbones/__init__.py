"""Image backbones that turn crops into joint heatmaps; importing the package registers them in ``BACKBONES``."""
from modeling.backbones import resnet  # noqa: F401
