"""EpiPose geometry: cameras, projection with distortion, epipolar geometry and triangulation.

Pure, batched, differentiable torch functions over any leading batch shape; conventions in
``core.geometry.cameras`` (world mm, ``X_cam = R X + t``, OpenCV axes and distortion).
"""
from core.geometry.projection import (camera_to_world, distort, normalized_to_pixels, pixels_to_normalized,
                                      project_points, undistort, undistort_pixels, world_to_camera)
from core.geometry.cameras import Cameras
from core.geometry.epipolar import epipolar_lines, fundamental_from_cameras, fundamental_matrix, point_line_distance
from core.geometry.triangulation import Triangulation, reprojection_errors, triangulate_cameras, triangulate_dlt

__all__ = [
    "Cameras",
    "world_to_camera", "camera_to_world", "distort", "undistort", "project_points", "undistort_pixels",
    "pixels_to_normalized", "normalized_to_pixels",
    "fundamental_matrix", "fundamental_from_cameras", "epipolar_lines", "point_line_distance",
    "Triangulation", "triangulate_dlt", "triangulate_cameras", "reprojection_errors",
]
