"""2D keypoint file readers (OpenPose JSON, COCO-style keypoint JSON) and the mapping of their layouts to the
Human3.6M 17 joints.

Layouts (keypoints per person):

- ``body25`` (OpenPose BODY_25, 25): nose, neck, right arm, left arm, mid-hip, right leg, left leg, eyes,
  ears, feet;
- ``body25b`` (OpenPose BODY_25B, 25): the 17 COCO keypoints, then upper neck, head top, feet;
- ``coco18`` (OpenPose COCO, 18): nose, neck, right arm, left arm, right leg, left leg, eyes, ears;
- ``coco17`` (MS COCO, 17): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left first);
- ``h36m`` (17): the Human3.6M joints themselves (``core.skeleton``), e.g. from a detector trained on them.

BODY_25 and BODY_25B both have 25 keypoints, so a file with 25 needs the layout named; 17 (taken as COCO)
and 18 are recognised by their count, and ``h36m`` must be named. Human3.6M joints the layouts do not have are made from others and listed by
``approximated_joints``: the pelvis (midpoint of the hips; BODY_25's mid-hip is used as it is), the spine
(mean of hips and shoulders), the thorax (OpenPose's neck, or the midpoint of the shoulders), the neck/nose
joint (the nose) and the head (BODY_25B's head top, else the midpoint of the ears). A made joint's
confidence is the smallest of its sources'; missing keypoints (confidence 0) are NaN.
"""
import json
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from core.natural_sort import natural_key
from core.skeleton import H36M17

_COCO17 = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist",
           "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
_FEET = ("l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel")
_OPENPOSE_ARMS = ("nose", "openpose_neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist")
KEYPOINT_NAMES: Dict[str, Tuple[str, ...]] = {
    "body25": _OPENPOSE_ARMS + ("mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye",
                                "l_eye", "r_ear", "l_ear") + _FEET,
    "body25b": _COCO17 + ("upper_neck", "head_top") + _FEET,
    "coco18": _OPENPOSE_ARMS + ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye",
                                "r_ear", "l_ear"),
    "coco17": _COCO17,
    "h36m": H36M17.joint_names,
}
LAYOUTS = tuple(KEYPOINT_NAMES)
AUTO_LAYOUTS = ("body25", "body25b", "coco18", "coco17")  # told apart by their counts (h36m must be named)

_HIPS, _SHOULDERS = ("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")
_MADE = {  # Human3.6M joint -> the keypoints averaged, for layouts that lack the joint itself
    "pelvis": _HIPS, "spine": _HIPS + _SHOULDERS, "thorax": _SHOULDERS, "neck": ("nose",), "head": ("l_ear", "r_ear"),
}
_SUBSTITUTES = {  # a layout's own keypoint taken for a Human3.6M joint it lacks
    ("body25", "pelvis"): ("mid_hip",), ("body25", "thorax"): ("openpose_neck",),
    ("coco18", "thorax"): ("openpose_neck",),
    ("body25b", "head"): ("head_top",),
}
_EXACT_IN = {("body25", "pelvis")}


class KeypointFormatError(ValueError):
    """A 2D keypoint file is missing, malformed, or of an unknown layout."""


def _sources(layout: str, joint: str) -> Tuple[str, ...]:
    if joint in KEYPOINT_NAMES[layout]:
        return (joint,)
    return _SUBSTITUTES.get((layout, joint), _MADE[joint])


def approximated_joints(layout: str) -> List[str]:
    """The Human3.6M joints that ``layout`` does not annotate as such (made from other keypoints)."""
    check_layout(layout)
    return [j for j in H36M17.joint_names if j not in KEYPOINT_NAMES[layout] and (layout, j) not in _EXACT_IN]


def check_layout(layout: str) -> None:
    if layout not in KEYPOINT_NAMES:
        raise KeypointFormatError(f"unknown keypoint layout '{layout}'; known layouts: {', '.join(LAYOUTS)}")


def layout_of(num_keypoints: int, layout: str = "auto", source: str = "2D keypoints") -> str:
    """The layout named, or the one a keypoint count identifies (17: coco17, 18: coco18)."""
    if layout != "auto":
        check_layout(layout)
        if len(KEYPOINT_NAMES[layout]) != num_keypoints:
            raise KeypointFormatError(f"{source}: {num_keypoints} keypoints per person ({3 * num_keypoints} values "
                                      f"read as x, y, confidence), but layout '{layout}' has "
                                      f"{len(KEYPOINT_NAMES[layout])} ({3 * len(KEYPOINT_NAMES[layout])} values)")
        return layout
    by_count = [name for name in AUTO_LAYOUTS if len(KEYPOINT_NAMES[name]) == num_keypoints]
    if len(by_count) == 1:
        return by_count[0]
    if by_count:
        raise KeypointFormatError(f"{source}: {num_keypoints} keypoints per person fit the layouts "
                                  f"{' and '.join(by_count)}; name the layout")
    raise KeypointFormatError(f"{source}: {num_keypoints} keypoints per person is not a known layout "
                              f"({3 * num_keypoints} values read as x, y, confidence; expected "
                              f"{', '.join(f'{n} ({len(KEYPOINT_NAMES[n])})' for n in LAYOUTS)})")


def to_h36m(keypoints: np.ndarray, layout: str) -> Tuple[np.ndarray, np.ndarray]:
    """(..., K, 3) keypoints (x, y, confidence) of ``layout`` -> Human3.6M (..., 17, 2) pixels (NaN where
    missing) and (..., 17) confidences (0 where missing)."""
    check_layout(layout)
    names = KEYPOINT_NAMES[layout]
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2:] != (len(names), 3):
        raise KeypointFormatError(f"layout '{layout}' expects (..., {len(names)}, 3) keypoints, got "
                                  f"{keypoints.shape}")
    weights = np.zeros((len(H36M17.joint_names), len(names)))
    for j, joint in enumerate(H36M17.joint_names):
        sources = [names.index(s) for s in _sources(layout, joint)]
        weights[j, sources] = 1.0 / len(sources)
    confidence = np.nan_to_num(keypoints[..., 2], nan=0.0)
    seen = confidence > 0
    xy = np.where(seen[..., None], keypoints[..., :2], 0.0)
    points = np.einsum("jk,...kc->...jc", weights, xy)
    uses = weights > 0
    joint_confidence = np.where(uses, confidence[..., None, :], np.inf).min(-1)             # (..., 17)
    joint_confidence = np.where(np.isfinite(joint_confidence), joint_confidence, 0.0)
    points[joint_confidence <= 0] = np.nan
    return points, joint_confidence


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def frame_number(path: Path) -> int:
    """The frame number of a per-frame file: the last number in its name."""
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise KeypointFormatError(f"'{path}': no frame number in the file name")
    return int(numbers[-1])


def _people_array(people: Sequence[Sequence[float]], source: str) -> np.ndarray:
    """(P, K, 3) from P flat lists [x1, y1, c1, x2, ...] of one frame."""
    lengths = [len(p) if isinstance(p, (list, tuple)) else p for p in people]
    try:
        array = np.asarray(people, dtype=np.float64)
    except (TypeError, ValueError):
        raise KeypointFormatError(f"{source}: keypoints must be flat lists of numbers (x1, y1, confidence1, x2, ...), "
                                  f"one per person, all of one length; got people of {lengths} values") from None
    if array.ndim > 2:
        raise KeypointFormatError(f"{source}: expected a flat list (x1, y1, confidence1, x2, ...) per person, got "
                                  f"nested lists of shape {array.shape[1:]}")
    if array.ndim != 2 or array.shape[1] % 3:
        raise KeypointFormatError(f"{source}: expected (x, y, confidence) triplets per person, got people of "
                                  f"{lengths} values")
    return array.reshape(len(array), -1, 3)


def _stack_frames(frames: List[np.ndarray], num_keypoints: int) -> np.ndarray:
    """Frames of (P_t, K, 3) people -> (T, max P_t, K, 3), missing people NaN."""
    most = max([len(f) for f in frames] + [1])
    out = np.full((len(frames), most, num_keypoints, 3), np.nan)
    for t, people in enumerate(frames):
        out[t, :len(people)] = people
    return out


def openpose_files(folder) -> List[Path]:
    """The JSON files of one camera's OpenPose folder, ordered by the frame number in their names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KeypointFormatError(f"OpenPose folder '{folder}' does not exist (one JSON file per frame expected)")
    files = sorted(folder.glob("*.json"), key=frame_number)
    if not files:
        raise KeypointFormatError(f"OpenPose folder '{folder}' holds no .json files")
    return files


def read_openpose_folder(folder, layout: str = "auto") -> Tuple[np.ndarray, str]:
    """One camera's OpenPose JSON files (``openpose_files``) -> (T, P, K, 3) keypoints of up to P people per frame
    (NaN-padded) and the layout; every file with people must have the keypoint count of one layout."""
    files = openpose_files(folder)
    frames = [_read_openpose_file(path) for path in files]
    first = {}                                                  # keypoints per person -> the first file with them
    for path, array in zip(files, frames):
        if len(array):
            first.setdefault(array.shape[1], path)
    if not first:
        raise KeypointFormatError(f"OpenPose folder '{folder}': no person detected in any frame")
    if len(first) > 1:
        found = ", ".join(f"{count} in '{path.name}'" for count, path in first.items())
        raise KeypointFormatError(f"OpenPose folder '{folder}': files disagree on the keypoints per person ({found}); "
                                  "one layout per camera expected")
    (num_keypoints, path), = first.items()
    layout = layout_of(num_keypoints, layout, f"'{path}'")
    return _stack_frames([f if len(f) else np.zeros((0, num_keypoints, 3)) for f in frames], num_keypoints), layout


def _read_openpose_file(path: Path) -> np.ndarray:
    """(P, K, 3) keypoints of the people of one OpenPose JSON file ((0, 0, 3) without people)."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise KeypointFormatError(f"'{path}' is not valid JSON: {err}") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list) or not all(isinstance(p, dict) and "pose_keypoints_2d" in p for p in people):
        raise KeypointFormatError(f"'{path}': expected OpenPose output, a key 'people' listing objects with "
                                  "'pose_keypoints_2d'")
    return _people_array([p["pose_keypoints_2d"] for p in people], f"'{path}'") if people else np.zeros((0, 0, 3))


def read_coco_keypoints(path, layout: str = "auto") -> Tuple[np.ndarray, str]:
    """A COCO-style keypoint JSON of one camera (a dataset with ``images`` and ``annotations``, or a list of
    results with ``image_id``, ``keypoints`` and ``score``) -> (T, P, K, 3) keypoints per image, images in
    the order of their ``file_name`` (numbers by value), or of their ids for a results list, and the layout. Visibility flags (dataset files) become
    confidence 1 for labelled keypoints and 0 for unlabelled ones."""
    path = Path(path)
    if not path.is_file():
        raise KeypointFormatError(f"COCO keypoint file '{path}' does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise KeypointFormatError(f"'{path}' is not valid JSON: {err}") from None
    if isinstance(data, dict) and {"images", "annotations"} <= set(data):
        images, annotations, is_result = data["images"], data["annotations"], False
        if not isinstance(images, list) or not all(isinstance(im, dict) and _is_id(im.get("id")) and
                                                   isinstance(im.get("file_name", ""), str) for im in images):
            raise KeypointFormatError(f"'{path}': 'images' must list objects with an integer or text 'id' (and a "
                                      "text 'file_name')")
        order = [im["id"] for im in sorted(images, key=lambda im: (natural_key(im.get("file_name", "")),
                                                                   natural_key(im["id"])))]
    elif isinstance(data, list):
        annotations, is_result, order = data, True, None
    else:
        raise KeypointFormatError(f"'{path}': expected a COCO dataset ('images', 'annotations') or a list of "
                                  "keypoint results")
    if not isinstance(annotations, list) or not all(isinstance(a, dict) and _is_id(a.get("image_id")) and
                                                    "keypoints" in a for a in annotations):
        raise KeypointFormatError(f"'{path}': every annotation needs an integer or text 'image_id' and 'keypoints'")
    if order is None:  # a results list: its frames are the images it mentions
        order = sorted({a["image_id"] for a in annotations}, key=natural_key)
        if order and all(isinstance(i, int) for i in order) and order[-1] - order[0] + 1 != len(order):
            raise KeypointFormatError(f"'{path}': a results list skips image ids between {order[0]} and {order[-1]} "
                                      "(images without a detection have no entry, so frames would shift); use a COCO "
                                      "dataset file, whose 'images' list every frame")
    index = {image_id: t for t, image_id in enumerate(order)}
    per_image: List[list] = [[] for _ in order]
    for a in annotations:
        if a["image_id"] not in index:
            raise KeypointFormatError(f"'{path}': annotation of unknown image_id {a['image_id']!r}")
        per_image[index[a["image_id"]]].append(a["keypoints"])
    people = [_people_array(p, f"'{path}'") if p else None for p in per_image]
    counts = {p.shape[1] for p in people if p is not None}
    if len(counts) != 1:
        raise KeypointFormatError(f"'{path}': expected one keypoint count per person, got {sorted(counts) or 'none'}")
    num_keypoints = counts.pop()
    layout = layout_of(num_keypoints, layout, f"'{path}'")
    frames = [p if p is not None else np.zeros((0, num_keypoints, 3)) for p in people]
    if not is_result:
        for f in frames:
            f[..., 2] = (f[..., 2] > 0).astype(np.float64)
    return _stack_frames(frames, num_keypoints), layout
