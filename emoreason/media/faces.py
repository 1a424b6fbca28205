"""Face detection and cropping behind a small detector interface.

The default detector is OpenCV's Haar cascade, which ships inside the OpenCV wheel and so works
offline. A stronger detector (RetinaFace, MediaPipe, ...) plugs in by name as
"package.module:ClassName": a subclass of `FaceDetector` implementing `detect(frame) -> list[Box]`.
Plug-in names are the user's to give (their prep config or a `--face-detector` option); a model
directory may only name the built-in detectors in BUILTIN_FACE_DETECTORS.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from emoreason.plugins import resolve_plugin_class

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the frame it was found in."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return self.w * self.h


class FaceDetector(abc.ABC):
    """The detector interface; plug-in classes must subclass it (checked before they are constructed)."""

    @abc.abstractmethod
    def detect(self, frame: np.ndarray) -> list[Box]:
        """Faces in an RGB uint8 frame [h, w, 3], in no particular order."""

    def detect_landmarks(self, frame: np.ndarray, box: Box) -> np.ndarray | None:
        """The 68 (x, y) points [68, 2] (iBUG layout, frame pixels) of the face in `box`, or None when it has none.

        Optional: a detector that locates landmarks overrides it, and then feeds the "landmarks:detector"
        encoder of the landmarks modality.
        """
        raise NotImplementedError(f"{type(self).__name__} does not locate facial landmarks")

    @classmethod
    def provides_landmarks(cls) -> bool:
        return cls.detect_landmarks is not FaceDetector.detect_landmarks


class HaarFaceDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade: fast on CPU, frontal faces only."""

    def __init__(
        self,
        cascade: str = DEFAULT_CASCADE,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size_frac: float = 0.1,
    ):
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if not 0.0 <= min_size_frac < 1.0:
            raise ValueError(f"min_size_frac must be in [0, 1), got {min_size_frac}")
        path = cascade if os.path.isfile(cascade) else os.path.join(cv2.data.haarcascades, cascade)
        self._cascade = cv2.CascadeClassifier(path)
        # CascadeClassifier does not raise on a bad path; it loads nothing.
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade {path!r}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_frac = min_size_frac

    def detect(self, frame: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(_check_frame(frame), cv2.COLOR_RGB2GRAY)  # [h, w]
        side = int(self.min_size_frac * min(gray.shape))
        rects, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(scores) != len(rects):
            # Older OpenCV builds return no level weights; a larger box is the surer face then.
            scores = np.array([float(w * h) for _, _, w, h in rects])
        return [Box(float(x), float(y), float(w), float(h), float(s)) for (x, y, w, h), s in zip(rects, scores)]


# The detectors a model directory may name: the project's own classes, which run no foreign code.
BUILTIN_FACE_DETECTORS: dict[str, type[FaceDetector]] = {"haar": HaarFaceDetector}


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame [h, w, 3], got {frame.dtype} {frame.shape}")
    return frame


def build_face_detector(name: str, **kwargs: Any) -> FaceDetector:
    """A built-in name ("haar") or "package.module:ClassName" of a FaceDetector subclass, with its kwargs.

    Only for names the user gave: a plug-in's module is imported here, which runs its code.
    """
    cls = resolve_plugin_class(name, FaceDetector, BUILTIN_FACE_DETECTORS, "face detector")
    return cls(**kwargs)


def main_face(boxes: list[Box]) -> Box | None:
    """The largest face (ties go to the higher score): in a clip that is usually the speaker."""
    return max(boxes, key=lambda b: (b.area, b.score), default=None)


def crop_face(frame: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """A size x size RGB crop of the square around `box`, grown by `margin` of its side on each side.

    Parts of the square outside the frame are zero, so a face at the border stays centred.
    """
    frame = _check_frame(frame)  # [h, w, 3]
    if size <= 0 or margin < 0:
        raise ValueError(f"expected size > 0 and margin >= 0, got size={size}, margin={margin}")
    side = max(1, round(max(box.w, box.h) * (1 + 2 * margin)))
    x0 = round(box.x + box.w / 2 - side / 2)
    y0 = round(box.y + box.h / 2 - side / 2)
    square = np.zeros((side, side, 3), dtype=np.uint8)  # [side, side, 3]
    h, w = frame.shape[:2]
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + side, w), min(y0 + side, h)
    if fx1 > fx0 and fy1 > fy0:
        square[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)  # [size, size, 3]


def detect_main_face(frame: np.ndarray, detector: FaceDetector, short_side: int | None = None) -> Box | None:
    """The main face of `frame`, in its own pixels; with `short_side`, detected on a copy whose shorter side has
    that many pixels (Haar's cost grows with the pixel count) and the box scaled back."""
    frame = _check_frame(frame)
    scale = 1.0 if short_side is None else short_side / min(frame.shape[:2])
    if scale >= 1.0:
        return main_face(detector.detect(frame))
    small = cv2.resize(frame, (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)  # [h', w', 3]
    box = main_face(detector.detect(small))
    if box is None:
        return None
    sx, sy = frame.shape[1] / small.shape[1], frame.shape[0] / small.shape[0]
    return Box(box.x * sx, box.y * sy, box.w * sx, box.h * sy, box.score)


def main_face_boxes(frames: np.ndarray, detector: FaceDetector, every: int = 1, short_side: int | None = None) -> list[Box | None]:
    """The main face's box in each frame [n]: detected on frames 0, every, 2 * every, ... and carried to the
    frames up to the next detection (a face moves little in the fraction of a second between sampled frames)."""
    if every < 1:
        raise ValueError(f"expected every >= 1, got {every}")
    boxes: list[Box | None] = []
    for i, frame in enumerate(frames):
        boxes.append(detect_main_face(frame, detector, short_side) if i % every == 0 else boxes[i - 1])
    return boxes


def crop_main_faces(
    frames: np.ndarray, detector: FaceDetector, margin: float, size: int, every: int = 1, short_side: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """One main-face crop per frame that has a face [k, size, size, 3], and the frames without one.

    `every` and `short_side`: see `main_face_boxes`; `crop_boxes` for the rest.
    """
    _check_frames(frames)
    return crop_boxes(frames, main_face_boxes(frames, detector, every, short_side), margin, size)


def crop_boxes(frames: np.ndarray, boxes: list[Box | None], margin: float, size: int) -> tuple[np.ndarray, list[int]]:
    """The crop of each frame's box [k, size, size, 3] (`crop_face`), and the frames whose box is None.

    A frame without a face is recorded in `missing`, not fatal: a speaker turning away for a
    moment should not cost the whole clip.
    """
    _check_frames(frames)
    crops: list[np.ndarray] = []
    missing: list[int] = []
    for i, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        if box is None:
            missing.append(i)
        else:
            crops.append(crop_face(frame, box, margin, size))
    out = np.stack(crops) if crops else np.zeros((0, size, size, 3), dtype=np.uint8)
    return out, missing


def main_face_landmarks(
    frames: np.ndarray, detector: FaceDetector, every: int = 1, short_side: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """The main face's landmarks in each frame that has them [k, 68, 2], and the frames without.

    The main face is found as for the crops (`main_face_boxes`: `every`, `short_side`); `landmarks_in_boxes`
    for the rest.
    """
    _check_landmark_detector(detector)
    return landmarks_in_boxes(frames, main_face_boxes(frames, detector, every, short_side), detector)


def landmarks_in_boxes(frames: np.ndarray, boxes: list[Box | None], detector: FaceDetector) -> tuple[np.ndarray, list[int]]:
    """`detector.detect_landmarks` of each frame's box, on the full frame [k, 68, 2], and the frames without.

    A detector answering with another shape is a ValueError naming its class and the expected shape.
    """
    from emoreason.constants import NUM_LANDMARKS

    _check_landmark_detector(detector)
    points: list[np.ndarray] = []
    missing: list[int] = []
    for i, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        found = None if box is None else detector.detect_landmarks(_check_frame(frame), box)
        if found is None:
            missing.append(i)
            continue
        found = np.asarray(found, dtype=np.float64)
        if found.shape != (NUM_LANDMARKS, 2) or not np.isfinite(found).all():
            raise ValueError(f"{type(detector).__name__}.detect_landmarks: expected [{NUM_LANDMARKS}, 2] finite "
                             f"(x, y) points, got shape {found.shape}")
        points.append(found)
    out = np.stack(points) if points else np.zeros((0, NUM_LANDMARKS, 2))
    return out, missing


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4:
        raise ValueError(f"expected frames [n, h, w, 3], got shape {frames.shape}")


def _check_landmark_detector(detector: FaceDetector) -> None:
    if not detector.provides_landmarks():
        raise ValueError(f"key 'media.faces.detector': {type(detector).__name__} does not locate landmarks "
                         "(a FaceDetector subclass implementing detect_landmarks is needed by 'landmarks:detector')")
