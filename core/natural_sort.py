"""Natural order of names: the numbers inside a name compare by value, so ``img_2`` comes before ``img_10``.

Frame files (``core.video``) and keypoint files and records (``datasets.formats.keypoints2d``) are ordered by it.
"""
import re


def natural_key(text) -> tuple:
    """Sort key that orders the numbers inside names by value: ``img_2`` before ``img_10``."""
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", str(text)))
