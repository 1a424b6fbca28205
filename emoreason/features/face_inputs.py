"""The face-derived encoder inputs of one decoded clip: the main face's crops (the face modality) and its
landmarks (a "landmarks:detector" encoder), from one detection of the main face per sampled frame.

Both follow `media.faces` the same way: `detect_every` and `detect_short_side` choose where the boxes come
from (`emoreason.media.faces.main_face_boxes`), and the crops and the landmarks are both taken from the full
frame inside those boxes. With both modalities configured the detector runs once per frame, not twice.

`face_boxes` is that rule for every caller that crops faces: the native backbones' NativeFeaturizer and the web
app's inspection panel take their boxes from it too, so their crops are the projector model's for the same settings.
"""

from __future__ import annotations

import numpy as np

from emoreason.constants import MODALITY_SPECS
from emoreason.features.decoding import Frames
from emoreason.features.media_config import FaceCropConfig
from emoreason.features.results import Absence, Featurized
from emoreason.schema import FaceRecord

FACE_INPUTS = ("face_crops", "landmarks")
"""The encoder inputs (`ModalitySpec.encoder_input`) computed here."""


def face_boxes(frames: np.ndarray, detector, faces: FaceCropConfig) -> list:
    """The main face's box (a media.faces Box, or None) in each of `frames` [n, h, w, 3], detected as `faces` says
    (`detect_every`, `detect_short_side`)."""
    from emoreason.media.faces import main_face_boxes

    return main_face_boxes(frames, detector, faces.detect_every, faces.detect_short_side)


def face_inputs(frames: Frames, modalities: list[str], detector, faces: FaceCropConfig, out: Featurized) -> dict[str, np.ndarray]:
    """modality -> its encoder input, for each of `modalities` whose input is in FACE_INPUTS and that found a
    face in some frame; the others get a plain absence in `out` (no_face, no_landmarks). Records which frames
    had a face in `out.faces` when crops were wanted."""
    from emoreason.media.faces import crop_boxes, landmarks_in_boxes

    wanted = [m for m in modalities if MODALITY_SPECS[m].encoder_input in FACE_INPUTS]
    if not wanted:
        return {}
    boxes = face_boxes(frames.frames, detector, faces)
    inputs: dict[str, np.ndarray] = {}
    for m in wanted:
        if MODALITY_SPECS[m].encoder_input == "face_crops":
            crops, missing = crop_boxes(frames.frames, boxes, faces.margin, faces.size)  # [k, size, size, 3]
            out.faces = FaceRecord(frame_times=frames.times, missing=missing)
            if len(crops) == 0:
                out.absent[m] = Absence(m, "no_face", f"no face found in any of {len(frames.times)} sampled frames",
                                        fault=False)
                continue
            inputs[m] = crops
        else:
            points, _ = landmarks_in_boxes(frames.frames, boxes, detector)  # [k, 68, 2]
            if len(points) == 0:
                out.absent[m] = Absence(m, "no_landmarks",
                                        f"no face landmarks found in any of {len(frames.times)} sampled frames", fault=False)
                continue
            inputs[m] = points
    return inputs
