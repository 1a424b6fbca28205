"""Pictures for the "what the model saw" panel: face boxes on frames, and a waveform, as RGB arrays."""

from __future__ import annotations

import cv2
import numpy as np

from emoreason.media.faces import Box

MAIN_FACE_RGB = (0, 220, 0)
OTHER_FACE_RGB = (255, 200, 0)


def draw_boxes(frame: np.ndarray, boxes: list[Box], main: Box | None) -> np.ndarray:
    """A copy of `frame` [h, w, 3] with every detected face outlined; the main face (the one cropped) in green."""
    out = np.ascontiguousarray(frame.copy())
    thickness = max(1, round(min(frame.shape[:2]) / 100))
    for box in boxes:
        colour = MAIN_FACE_RGB if box == main else OTHER_FACE_RGB
        top_left = (round(box.x), round(box.y))
        bottom_right = (round(box.x + box.w), round(box.y + box.h))
        cv2.rectangle(out, top_left, bottom_right, colour, thickness * (2 if box == main else 1))
    return out


def waveform_image(wave: np.ndarray, width: int = 720, height: int = 120) -> np.ndarray:
    """[height, width, 3] uint8: the min..max envelope of `wave` [n] per pixel column, on white."""
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    mid = height // 2
    image[mid, :] = (200, 200, 200)
    if len(wave) == 0:
        return image
    peak = float(np.max(np.abs(wave))) or 1.0
    # Column c covers samples [edges[c], edges[c + 1]); at least one sample each, so short clips still draw.
    edges = np.linspace(0, len(wave), width + 1).astype(int)
    for column in range(width):
        chunk = wave[edges[column] : max(edges[column + 1], edges[column] + 1)]
        if len(chunk) == 0:
            continue
        top = mid - int(float(chunk.max()) / peak * (mid - 2))
        bottom = mid - int(float(chunk.min()) / peak * (mid - 2))
        image[min(top, bottom) : max(top, bottom) + 1, column] = (40, 90, 200)
    return image
