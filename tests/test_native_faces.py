"""The native backbones' face crops follow media.faces' cheaper detection (detect_every, detect_short_side) as the
projector model's do: one rule (emoreason.features.face_inputs.face_boxes), so both kinds crop a clip alike, and
the native model directory records and reloads the two settings."""

from __future__ import annotations

import numpy as np
import pytest

from emoreason.encoders.config import EncoderConfig
from emoreason.features.featurizer import Featurizer
from emoreason.features.media_config import FaceCropConfig, MediaConfig
from emoreason.media.video import FrameSampling
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.processor import NativeProcessor
from native_twins import twin_dir

FRAMES = FrameSampling(num_frames=6)
CHEAP = {"detect_every": 2, "detect_short_side": 80}


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("native_face_clip")
    return root / generate_dataset(root, SyntheticConfig(num_per_class=1, classes=["happy"]))[0].media.video


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return NativeProcessor.from_pretrained(twin_dir(tmp_path_factory, "qwen2_5_vl"))


def native_crops(processor, faces: FaceCropConfig, files) -> np.ndarray:
    """The crops NativeFeaturizer hands the backbone's processor."""
    seen = []
    face_inputs = processor.face_inputs
    processor.face_inputs = lambda crops: seen.append(crops) or face_inputs(crops)  # this instance only
    try:
        out = NativeFeaturizer(processor, FRAMES, faces=faces).featurize(files, ["face"])
    finally:
        del processor.face_inputs
    assert "face" in out.inputs, out.absent
    (crops,) = seen
    return crops


def projector_crops(faces: FaceCropConfig, files) -> np.ndarray:
    """The face encoder's input the projector Featurizer decodes (no encoder runs in decode)."""
    featurizer = Featurizer({"face": EncoderConfig(model="unused-by-decode", pooling="none")},
                            MediaConfig(video=FRAMES, faces=faces))
    decoded = featurizer.decode(files, ["face"])
    assert "face" in decoded.pending, decoded.result.absent
    return decoded.pending["face"]


@pytest.mark.parametrize("cheap", [{}, CHEAP], ids=["defaults", "every2_short80"])
def test_native_crops_equal_the_projector_featurizers(processor, face_clip, cheap):
    faces = FaceCropConfig(size=56, **cheap)
    native = native_crops(processor, faces, {"video": face_clip})
    projector = projector_crops(faces, {"video": face_clip})
    assert native.shape == projector.shape and np.array_equal(native, projector)


def test_cheaper_detection_changes_the_native_crops(processor, face_clip):
    from emoreason.media.faces import build_face_detector, crop_main_faces
    from emoreason.media.video import decode_frames

    cheap = native_crops(processor, FaceCropConfig(size=56, **CHEAP), {"video": face_clip})
    full = native_crops(processor, FaceCropConfig(size=56), {"video": face_clip})
    # The defaults are today's crops, bit for bit: every frame detected at full size.
    frames = decode_frames(face_clip, FRAMES).frames
    expected, _ = crop_main_faces(frames, build_face_detector("haar"), 0.2, 56)
    assert np.array_equal(full, expected)
    assert not np.array_equal(cheap, full)  # the settings reach the native path (they used to be ignored)


def test_native_model_directory_records_the_detection_settings(tmp_path_factory):
    from emoreason.config import ConfigError
    from emoreason.native.config import ComponentTraining, NativeModelConfig
    from emoreason.native.model import NativeModel, build_processor, read_native_config

    cfg = NativeModelConfig(base=twin_dir(tmp_path_factory, "qwen2_5_vl"), components={"llm": ComponentTraining("lora")},
                            modalities=["video", "face"], frames=FRAMES, faces=FaceCropConfig(size=56, **CHEAP))
    out = tmp_path_factory.mktemp("native_cheap_faces") / "model"
    NativeModel.build(cfg).save_pretrained(out, build_processor(cfg))
    faces = read_native_config(out).faces
    assert (faces.detect_every, faces.detect_short_side) == (2, 80)
    with pytest.raises(ConfigError, match="key 'detect_every'"):
        FaceCropConfig(detect_every=0)
