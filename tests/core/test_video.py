"""MP4 writing (core/video.py): frames of odd sizes, which MPEG-4 cannot hold, are padded rather than cropped."""
import cv2
import numpy as np
import pytest

from core.video import FrameSource, Mp4Writer, VideoError


def test_odd_frames_are_padded_to_even_and_kept_whole(tmp_path):
    frame = np.zeros((51, 33, 3), np.uint8)
    frame[:, -1] = 255           # the last column and row, which cropping to even would lose
    frame[-1] = 255
    with Mp4Writer(tmp_path / "odd.mp4", 10) as writer:
        for _ in range(3):
            writer.write(frame)
    source = FrameSource(tmp_path / "odd.mp4")
    frames = list(source.frames())
    assert len(source) == 3 and frames[0].shape == (52, 34, 3)
    assert frames[0][25, 32].mean() > 150 and frames[0][50, 10].mean() > 150 and frames[0][10, 10].mean() < 60
    with pytest.raises(VideoError, match="frame 1 is 34x51, expected 33x51"):
        with Mp4Writer(tmp_path / "sizes.mp4", 10) as writer:
            writer.write(frame)
            writer.write(np.zeros((51, 34, 3), np.uint8))
    assert not list(tmp_path.glob(".*")) and not (tmp_path / "sizes.mp4").exists()
    assert int(cv2.VideoCapture(str(tmp_path / "odd.mp4")).get(cv2.CAP_PROP_FRAME_WIDTH)) == 34
