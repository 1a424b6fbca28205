"""Two inputs from one encoder forward (frame patches + frame_cls), and the landmarks modality (schema,
the built-in landmark encoder, annotation and detector sources through the Featurizer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoreason.config import ConfigError
from emoreason.constants import NUM_LANDMARKS
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.landmarks import normalise_landmarks
from emoreason.features.featurizer import Featurizer
from emoreason.features.media_config import MediaConfig
from emoreason.media.faces import Box, FaceDetector
from emoreason.media.video import FrameSampling
from emoreason.schema import SchemaError, parse_sample


@pytest.fixture(scope="module")
def clip_vision(tmp_path_factory) -> str:
    from emoreason.encoders.tiny import build_tiny

    return build_tiny("clip-vision", tmp_path_factory.mktemp("enc"))


def template_points(shift: float = 0.0) -> np.ndarray:
    """68 distinct (x, y) points on a 10 x 7 grid, offset by `shift`."""
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(7.0)), axis=-1).reshape(-1, 2)[:NUM_LANDMARKS]
    return grid * 3.0 + 40.0 + shift  # [68, 2]


def test_frame_cls_shares_the_frame_forward_pass_bit_for_bit(clip_vision, media_dir):
    media = MediaConfig(video=FrameSampling(num_frames=3))
    patches = EncoderConfig(model=clip_vision, pooling="patches")
    cls = EncoderConfig(model=clip_vision, pooling="cls")
    files = {"video": media_dir / "h264_aac.mp4"}
    together = Featurizer({"frame": patches, "frame_cls": cls}, media)
    encoder = together.encoder("frame_cls")
    assert encoder is together.encoder("frame")  # one loaded copy of the weights
    calls = []
    hook = encoder._backbone.register_forward_hook(lambda *args: calls.append(1))
    try:
        both = together.featurize(files)
    finally:
        hook.remove()
    assert len(calls) == 1  # 3 frames in one batch: one forward gave both inputs
    alone_patches = Featurizer({"frame": patches}, media).featurize(files).features["frame"]
    alone_cls = Featurizer({"frame_cls": cls}, media).featurize(files).features["frame_cls"]
    num_patches = alone_patches.shape[0] // 3
    assert both.features["frame_cls"].shape == (3, alone_cls.shape[1])  # one CLS token per frame
    assert torch.equal(both.features["frame"], alone_patches) and torch.equal(both.features["frame_cls"], alone_cls)
    assert num_patches > 1


def test_landmark_annotation_is_validated_naming_the_field():
    good = [template_points().tolist()] * 2
    sample = parse_sample({"id": "a", "landmarks": {"points": good}})
    assert len(sample.landmarks.points) == 2
    for bad, expected in [
        ([template_points()[:67].tolist()], "frame 0: expected 68 [x, y] points, got 67"),
        ([[[1.0, 2.0, 3.0]] * NUM_LANDMARKS], "frame 0, point 0: expected [x, y]"),
        ([[[1.0, float("nan")]] * NUM_LANDMARKS], "finite numbers"),
        ([], "non-empty list of frames"),
    ]:
        with pytest.raises(SchemaError, match="field 'landmarks.points'") as info:
            parse_sample({"id": "a", "landmarks": {"points": bad}})
        assert expected in str(info.value)


def test_landmark_encoder_normalises_each_frame_to_its_face():
    from emoreason.encoders.landmarks import REFERENCE_SHAPE

    theta = np.deg2rad(8.0)
    roll = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    face = template_points()
    points = np.stack([face, face + 100.0, face * 3.0, face @ roll.T])  # moved, scaled, rolled
    tokens = normalise_landmarks(points)
    assert tokens.shape == (4, 2 * NUM_LANDMARKS)
    for other in tokens[1:]:
        torch.testing.assert_close(other, tokens[0], atol=1e-5, rtol=0)
    # The reference face itself, anywhere, at any size and roll, is the zero token: features are deviations from it.
    reference = np.stack([REFERENCE_SHAPE * 40 + 7.0, REFERENCE_SHAPE @ roll.T])
    torch.testing.assert_close(normalise_landmarks(reference), torch.zeros(2, 2 * NUM_LANDMARKS), atol=1e-5, rtol=0)
    # A mirror image is not a rotation: it stays distinguishable from the face.
    assert not torch.allclose(normalise_landmarks((face * [-1.0, 1.0])[None])[0], tokens[0], atol=1e-3)
    with pytest.raises(ValueError, match=r"expected \[frames >= 1, 68, 2\]"):
        normalise_landmarks(points[:, :60])
    with pytest.raises(ConfigError, match="key 'pooling'"):
        EncoderConfig(model="landmarks:annotation", pooling="cls")
    with pytest.raises(ConfigError, match="key 'model'"):
        EncoderConfig(model="landmarks:mediapipe")


def test_reference_shape_is_the_synthetic_neutral_face():
    from emoreason.data_prep.synthetic_render import STYLES, face_landmarks, sample_layout
    from emoreason.encoders.landmarks import REFERENCE_SHAPE

    drawn = face_landmarks(STYLES["neutral"].face, sample_layout(np.random.default_rng(0), 96, 96))
    assert normalise_landmarks(drawn[None]).abs().max() < 1e-3  # equal up to the constant's 4 decimals
    assert REFERENCE_SHAPE.shape == (NUM_LANDMARKS, 2)


def test_annotated_landmarks_follow_the_frame_sampling(media_dir):
    # 24 annotated frames, frame i shifted by i: 4 uniform frames take frames 3, 9, 15, 21.
    points = [template_points(i).tolist() for i in range(24)]
    sample = parse_sample({"id": "a", "media": {"video": "h264_aac.mp4"}, "landmarks": {"points": points}})
    media = MediaConfig(video=FrameSampling(num_frames=4))
    featurizer = Featurizer({"landmarks": EncoderConfig(model="landmarks:annotation", pooling="none")}, media)
    out = featurizer.featurize({"video": media_dir / "h264_aac.mp4"}, landmarks=sample.landmarks)
    assert out.features["landmarks"].shape == (4, 2 * NUM_LANDMARKS) and out.features["landmarks"].dtype == torch.float16
    none = featurizer.featurize({"video": media_dir / "h264_aac.mp4"})
    assert none.absent["landmarks"].reason == "no_landmarks" and not none.absent["landmarks"].fault
    by_fps = Featurizer(featurizer.encoders, MediaConfig(video=FrameSampling(num_frames=None, fps=2.0)))
    refused = by_fps.featurize({}, landmarks=sample.landmarks)
    assert refused.absent["landmarks"].fault and "landmarks.fps" in refused.absent["landmarks"].message


class GridLandmarkDetector(FaceDetector):
    """A test plug-in: one face box per frame and the template's points inside it."""

    def detect(self, frame):
        return [Box(30.0, 20.0, 40.0, 50.0, 1.0)]

    def detect_landmarks(self, frame, box):
        return template_points() + box.x


class WrongShapeDetector(GridLandmarkDetector):
    def detect_landmarks(self, frame, box):
        return np.zeros((5, 2))


def test_detector_plugin_landmarks_through_the_featurizer(media_dir):
    enc = {"landmarks": EncoderConfig(model="landmarks:detector", pooling="none")}
    media = MediaConfig(video=FrameSampling(num_frames=3))
    media.faces.detector = f"{__name__}:GridLandmarkDetector"
    out = Featurizer(enc, media).featurize({"video": media_dir / "h264_aac.mp4"})
    assert out.features["landmarks"].shape == (3, 2 * NUM_LANDMARKS)
    with pytest.raises(ValueError, match=r"WrongShapeDetector.detect_landmarks: expected \[68, 2\]"):
        Featurizer(enc, media, face_detector=WrongShapeDetector()).featurize({"video": media_dir / "h264_aac.mp4"})
    from emoreason.media.faces import HaarFaceDetector

    assert not HaarFaceDetector.provides_landmarks() and GridLandmarkDetector.provides_landmarks()
    with pytest.raises(ValueError, match="key 'media.faces.detector'"):
        Featurizer(enc, media, face_detector=HaarFaceDetector()).featurize({"video": media_dir / "h264_aac.mp4"})


class CountingLandmarkDetector(GridLandmarkDetector):
    """GridLandmarkDetector that records the frame shape of every detect call and the box of every landmark call."""

    def __init__(self):
        self.detected, self.located = [], []

    def detect(self, frame):
        self.detected.append(frame.shape[:2])
        return [Box(frame.shape[1] * 0.25, frame.shape[0] * 0.25, frame.shape[1] * 0.5, frame.shape[0] * 0.5, 1.0)]

    def detect_landmarks(self, frame, box):
        self.located.append((frame.shape[:2], box))
        return super().detect_landmarks(frame, box)


def test_detected_landmarks_honour_the_cheaper_detection_settings_as_the_crops_do(clip_vision, media_dir):
    files = {"video": media_dir / "h264_aac.mp4"}
    landmarks = EncoderConfig(model="landmarks:detector", pooling="none")
    cheap = MediaConfig(video=FrameSampling(num_frames=4))
    cheap.faces.detect_every, cheap.faces.detect_short_side = 2, 16
    detector = CountingLandmarkDetector()
    out = Featurizer({"landmarks": landmarks}, cheap, face_detector=detector).featurize(files)
    assert out.features["landmarks"].shape == (4, 2 * NUM_LANDMARKS)
    full = detector.located[0][0]
    assert len(detector.detected) == 2 and all(min(shape) == 16 for shape in detector.detected)  # frames 0 and 2, small
    assert [shape for shape, _ in detector.located] == [full] * 4  # landmarks still located on every full frame
    boxes = [box for _, box in detector.located]
    assert boxes[1] == boxes[0] and boxes[3] == boxes[2]  # the carried box, as the crops get
    assert boxes[0].w == pytest.approx(full[1] * 0.5, rel=0.05)  # scaled back to the full frame
    # Face crops and landmarks together: one detection per detected frame feeds both.
    both = CountingLandmarkDetector()
    face = EncoderConfig(model=clip_vision, pooling="cls")
    with_face = Featurizer({"face": face, "landmarks": landmarks}, cheap, face_detector=both).featurize(files)
    assert len(both.detected) == 2 and torch.equal(with_face.features["landmarks"], out.features["landmarks"])
    # The settings are in the landmarks features' cache key, as in the face crops'.
    plain = Featurizer({"landmarks": landmarks}, MediaConfig(video=FrameSampling(num_frames=4)))
    assert plain.settings("landmarks") != Featurizer({"landmarks": landmarks}, cheap).settings("landmarks")


def test_landmark_attention_in_emotion_lm(tiny_llm_dir, tmp_path):
    """Face-LLaVA's wiring: the face tokens query the landmark regions; landmarks take no LLM positions of their own."""
    from emoreason.encoders.tiny import build_tiny
    from emoreason.model.config import ModelConfig
    from emoreason.model.landmark_attention import LandmarkAttentionConfig
    from emoreason.model.loading import build_model
    from emoreason.model.projectors import ProjectorConfig

    vit = build_tiny("vit", tmp_path)
    config = ModelConfig(
        llm=tiny_llm_dir,
        encoders={"face": EncoderConfig(model=vit, pooling="tokens:2"),
                  "landmarks": EncoderConfig(model="landmarks:annotation", pooling="none")},
        projectors={"face": ProjectorConfig(kind="mlp")},
        landmark_attention=LandmarkAttentionConfig(enabled=True, modality="face", num_heads=2),
    )
    assert config.modalities == ["face", "landmarks"]
    model, processor = build_model(config, seed=0)
    turns = [{"role": "user", "content": "<face> <landmarks> Which emotion?"}, {"role": "assistant", "content": "happy"}]
    encoded = processor.encode(turns, {"face": 6, "landmarks": 3})  # 3 frames: 2 face tokens each
    assert encoded.media_ids.count(2) == 6 and 6 not in encoded.media_ids  # no <landmarks> positions
    face = torch.randn(1, 6, model.feature_dims["face"])
    points = normalise_landmarks(np.stack([template_points(i) for i in range(3)]))[None]  # [1, 3, 136]
    ones = torch.ones(1, 6, dtype=torch.bool)
    plain = model.project({"face": (face, ones)})["face"][0]
    attended = model.project({"face": (face, ones), "landmarks": (points, torch.ones(1, 3, dtype=torch.bool))})["face"][0]
    assert not torch.allclose(plain, attended)
    attended.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.landmark_attention.region_proj.parameters())
    from emoreason.model.loading import load_model, save_model

    reloaded, _ = load_model(save_model(model, processor, tmp_path / "saved"))
    landmark_inputs = {"face": (face, ones), "landmarks": (points, torch.ones(1, 3, dtype=torch.bool))}
    with torch.no_grad():
        assert torch.equal(reloaded.project(landmark_inputs)["face"][0], model.project(landmark_inputs)["face"][0])
    with pytest.raises(ValueError, match="multiple of its 4 landmark frames"):
        four = normalise_landmarks(np.stack([template_points(i) for i in range(4)]))[None]
        model.project({"face": (face, ones), "landmarks": (four, torch.ones(1, 4, dtype=torch.bool))})
    with pytest.raises(ConfigError, match="key 'landmark_attention.enabled'"):
        ModelConfig(llm=tiny_llm_dir, encoders={"face": config.encoders["face"]}, projectors=config.projectors,
                    landmark_attention=LandmarkAttentionConfig(enabled=True))


def test_synthetic_landmarks_move_with_the_drawn_expression():
    from emoreason.data_prep.synthetic_render import STYLES, render_clip

    def points(label: str) -> np.ndarray:  # the same seed: the same head, layout and motion, another expression
        frames, landmarks = render_clip(STYLES[label].face, np.random.default_rng(3), 4, 96, 96, with_landmarks=True)
        assert landmarks.shape == (len(frames), NUM_LANDMARKS, 2)
        return landmarks

    happy, sad, angry, surprised = (points(label) for label in ("happy", "sad", "angry", "surprised"))
    np.testing.assert_allclose(happy[:, :17], sad[:, :17])  # the jaw does not change with the class
    corners, upper_lip_top = [48, 54], 51  # image y grows downwards
    assert (happy[:, corners, 1].mean(axis=1) < happy[:, upper_lip_top, 1]).all()  # a smile lifts the corners
    assert (sad[:, corners, 1].mean(axis=1) > sad[:, upper_lip_top, 1]).all()  # a frown drops them
    inner_brows = [21, 22]
    assert (angry[:, inner_brows, 1] > sad[:, inner_brows, 1] + 2).all()  # lowered vs raised inner brow ends
    gap = lambda p: p[:, 66, 1] - p[:, 62, 1]  # inner lips, lower minus upper
    assert (gap(surprised) > gap(angry) + 3).all()  # the open mouth
