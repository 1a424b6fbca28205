"""The web app's "what the model saw" panel finds faces by the model's own rule (face_inputs.face_boxes, with
media.faces' detect_every and detect_short_side): the boxes it draws are the boxes its crops come from, equal to
main_face_boxes', its crops are the featurizers' own, and it runs the detector once per detection, not twice."""

from __future__ import annotations

import numpy as np
import pytest

from emoreason.features.media_config import FaceCropConfig, MediaConfig
from emoreason.media.video import FrameSampling
from native_twins import twin_dir

FRAMES = FrameSampling(num_frames=6)
CHEAP = FaceCropConfig(size=56, detect_every=2, detect_short_side=80)


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("inspect_face_clip")
    return root / generate_dataset(root, SyntheticConfig(num_per_class=1, classes=["happy"]))[0].media.video


class CountingDetector:
    """Haar, counting its calls."""

    def __init__(self):
        from emoreason.media.faces import build_face_detector

        self.haar, self.calls = build_face_detector("haar"), 0

    def detect(self, frame):
        self.calls += 1
        return self.haar.detect(frame)


def inspected(media, clip):
    from emoreason.web.inspection import Inspector

    inspector = Inspector(media)
    inspector._detector = CountingDetector()
    report = inspector.inspect({"video": clip})
    return report, inspector._detector.calls


def expected_boxes(clip, faces):
    from emoreason.media.faces import build_face_detector, main_face_boxes
    from emoreason.media.video import decode_frames

    frames = decode_frames(clip, FRAMES).frames
    return frames, main_face_boxes(frames, build_face_detector("haar"), faces.detect_every, faces.detect_short_side)


def test_projector_panel_draws_the_boxes_it_crops_in(face_clip):
    from emoreason.encoders.config import EncoderConfig
    from emoreason.features.featurizer import Featurizer
    from emoreason.web.drawing import draw_boxes
    from emoreason.web.inspection import ModelMedia

    media = MediaConfig(video=FRAMES, faces=CHEAP)
    report, calls = inspected(ModelMedia({}, media, []), face_clip)  # no encoder: the frames and crops only
    frames, boxes = expected_boxes(face_clip, CHEAP)
    assert report.boxes == boxes and any(b is not None for b in boxes)
    assert calls == 3  # frames 0, 2, 4: once per detection (it used to detect every frame a second time to draw)
    for (drawn, caption), frame, box in zip(report.frames, frames, boxes, strict=True):
        assert np.array_equal(drawn, draw_boxes(frame, [box] if box else [], box))
        assert caption.endswith("no face" if box is None else " face")
    # The crops shown are the face encoder's input, as the projector Featurizer decodes it.
    decoded = Featurizer({"face": EncoderConfig(model="unused-by-decode", pooling="none")}, media).decode(
        {"video": face_clip}, ["face"])
    assert np.array_equal(np.stack([crop for crop, _ in report.crops]), decoded.pending["face"])
    assert any("every 2 frames" in note and "80 px" in note for note in report.notes)


def test_native_panel_uses_the_native_models_detection_settings(tmp_path_factory, face_clip):
    from emoreason.native.featurizer import NativeFeaturizer
    from emoreason.native.processor import NativeProcessor
    from emoreason.web.inspection import NativeModelMedia

    processor = NativeProcessor.from_pretrained(twin_dir(tmp_path_factory, "qwen2_5_vl"))
    media = NativeModelMedia(NativeFeaturizer(processor, FRAMES, faces=CHEAP), ["face"])
    report, _ = inspected(media, face_clip)
    _, boxes = expected_boxes(face_clip, CHEAP)
    assert report.boxes == boxes
    (row,) = report.modalities
    assert (row.modality, row.status) == ("face", "present")
    assert len(report.crops) == sum(b is not None for b in boxes)
    shown = processor.face_inputs(np.stack([crop for crop, _ in report.crops]))  # the panel's crops, processed
    assert row.shape.endswith(f"; {shown.num_tokens} LLM positions")
