"""Readers of external file formats, converting to EpiPose conventions at the border (BVH motion)."""
