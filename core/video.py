"""Reading frames from a video file or an image folder, and writing MP4 files atomically."""
import os
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from core.io import temporary_path
from core.natural_sort import natural_key

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class VideoError(ValueError):
    """A video or image folder is missing or unreadable, or a video cannot be written."""


class FrameSource:
    """Frames (uint8 RGB) of a video file or of an image folder (images in name order, numbers by value)."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_dir():
            self.images = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                                 key=lambda p: natural_key(p.name))
            if not self.images:
                raise VideoError(f"image folder '{self.path}' holds no {'/'.join(IMAGE_SUFFIXES)} files")
            self.num_frames = len(self.images)
        elif self.path.is_file():
            self.images = None
            capture = cv2.VideoCapture(str(self.path))
            if not capture.isOpened():
                raise VideoError(f"video '{self.path}' cannot be opened by OpenCV")
            self.num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            capture.release()
        else:
            raise VideoError(f"video or image folder '{self.path}' does not exist")

    def __len__(self) -> int:
        return self.num_frames

    def frames(self) -> Iterator[np.ndarray]:
        if self.images is not None:
            for path in self.images:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise VideoError(f"image '{path}' cannot be read")
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            for index in range(self.num_frames):
                ok, image = capture.read()
                if not ok:
                    raise VideoError(f"video '{self.path}': frame {index} of {self.num_frames} cannot be read")
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


class Mp4Writer:
    """Writes uint8 RGB frames of one size to an MP4 (codec mp4v) under a temporary name in the target's folder,
    renamed to ``path`` by ``close()``; on an error inside a ``with`` block the partial file is removed. MPEG-4
    needs even sizes: a frame of odd width or height gets one black column or row more (right, bottom)."""

    def __init__(self, path, fps: float):
        self.path, self.fps = Path(path), float(fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary_path(self.path)
        self.writer: Optional[cv2.VideoWriter] = None
        self.size = None
        self.count = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        height, width = frame_rgb.shape[:2]
        if self.writer is None:
            self.size = (width, height)
            self.writer = cv2.VideoWriter(str(self.temporary), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (width + width % 2, height + height % 2))
            if not self.writer.isOpened():
                raise VideoError(f"cannot write MP4 video '{self.path}' (OpenCV has no mp4v encoder here?)")
        elif (width, height) != self.size:
            raise VideoError(f"video '{self.path}': frame {self.count} is {width}x{height}, expected "
                             f"{self.size[0]}x{self.size[1]}")
        even = np.pad(frame_rgb, ((0, height % 2), (0, width % 2), (0, 0)))
        self.writer.write(cv2.cvtColor(np.ascontiguousarray(even), cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> Path:
        if self.writer is None:
            self.temporary.unlink(missing_ok=True)
            raise VideoError(f"video '{self.path}': no frames were written")
        self.writer.release()
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
