import hashlib
from pathlib import Path

import av
import decord
import numpy as np
import pytest

from emoreason.data_prep import synthetic
from emoreason.data_prep.synthetic import (
    STYLES,
    SUBTITLE,
    SyntheticConfig,
    generate_dataset,
    main,
    render_voice,
    write_clip,
)
from emoreason.media.faces import Box, HaarFaceDetector, crop_face, main_face
from emoreason.schema import load_samples

FACE_STRIDE = 4
PER_CLASS = 5  # 20 clips: enough for leave-one-out accuracy, ~2 s to generate


@pytest.fixture(scope="module")
def h264_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_h264")
    generate_dataset(out, SyntheticConfig(num_per_class=PER_CLASS, seed=11))
    return out


@pytest.fixture(scope="module")
def h264_samples(h264_set):
    return load_samples(h264_set / "samples.jsonl")


def _decode_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])  # [s]


def _read_frames(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()  # [n, h, w, 3]


def _check_clip(path: Path, video_codec: str) -> None:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == video_codec
        assert (video.width, video.height, video.codec_context.pix_fmt) == (160, 160, "yuv420p")
        assert video.frames == 24 and video.average_rate == 12
        assert float(video.duration * video.time_base) == pytest.approx(2.0, abs=0.1)
        assert audio.codec_context.name == "aac" and audio.sample_rate == 16_000
        assert audio.codec_context.layout.name == "mono"
        assert float(audio.duration * audio.time_base) == pytest.approx(2.0, abs=0.1)
        assert sum(1 for _ in container.decode(video=0)) == 24
    # AAC pads to whole 1024-sample frames, so allow one frame either way.
    assert abs(len(_decode_audio(path)) - 32_000) <= 1024 * 2


def test_h264_clips_are_real_mp4_with_aac(h264_set, h264_samples):
    for sample in h264_samples[:4]:
        _check_clip(h264_set / sample.media.video, "h264")
        assert sample.source["encoder"] == "libx264"
    frames = _read_frames(h264_set / h264_samples[0].media.video)
    assert frames.shape == (24, 160, 160, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a picture, not a flat frame


def test_mpeg4_clips_via_cli(tmp_path):
    assert main(["--out", str(tmp_path), "--num-per-class", "1", "--codec", "mpeg4", "--classes", "happy,sad"]) == 0
    samples = load_samples(tmp_path / "samples.jsonl")
    assert [s.targets.emotion for s in samples] == ["happy", "sad"]
    for sample in samples:
        _check_clip(tmp_path / sample.media.video, "mpeg4")
        assert sample.source["encoder"] == "mpeg4"
    assert _read_frames(tmp_path / samples[0].media.video).shape == (24, 160, 160, 3)


def test_cli_rejects_unknown_class(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--classes", "happy,bored"])


def test_samples_are_balanced_with_identical_subtitles(h264_set, h264_samples):
    labels = [s.targets.emotion for s in h264_samples]
    assert sorted(set(labels)) == sorted(SyntheticConfig().classes)
    assert all(labels.count(c) == PER_CLASS for c in set(labels))
    assert {s.subtitle for s in h264_samples} == {SUBTITLE}
    assert [s.id for s in h264_samples[:2]] == ["syn_00000", "syn_00001"]
    assert all(s.media.video == f"clips/{s.id}.mp4" and s.source["dataset"] == "synthetic" for s in h264_samples)
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in (h264_set / "clips").iterdir()) == [f"{s.id}.mp4" for s in h264_samples]


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_deterministic_for_a_seed(tmp_path):
    config = SyntheticConfig(num_per_class=1, seconds=1.0, classes=["happy", "angry"], seed=5)
    first, second = generate_dataset(tmp_path / "a", config), generate_dataset(tmp_path / "b", config)
    assert first == second
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    generate_dataset(tmp_path / "c", SyntheticConfig(num_per_class=1, seconds=1.0, classes=["happy", "angry"], seed=6))
    assert _digests(tmp_path / "a")["syn_00000.mp4"] != _digests(tmp_path / "c")["syn_00000.mp4"]


def test_without_audio_there_is_no_audio_track(tmp_path):
    generate_dataset(tmp_path, SyntheticConfig(num_per_class=1, classes=["sad"], seconds=0.5, with_audio=False))
    with av.open(str(tmp_path / "clips" / "syn_00000.mp4")) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    write_clip(path, frames, None, fps=4)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(synthetic.av.VideoFrame, "from_ndarray", broken)
    with pytest.raises(RuntimeError):
        write_clip(path, frames + 100, None, fps=4)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_config_validation():
    with pytest.raises(ValueError, match="classes"):
        SyntheticConfig(classes=["happy", "bored"])
    with pytest.raises(ValueError, match="even"):
        SyntheticConfig(width=161)
    with pytest.raises(ValueError, match="codec"):
        SyntheticConfig(codec="vp9")


@pytest.fixture(scope="module")
def decoded(h264_set, h264_samples):
    """(label, frames [n, h, w, 3], audio [s]) per clip."""
    return [
        (s.targets.emotion, _read_frames(h264_set / s.media.video), _decode_audio(h264_set / s.media.video))
        for s in h264_samples
    ]


@pytest.fixture(scope="module")
def faces(decoded) -> list[list[Box | None]]:
    """Haar's main face in every 4th frame of each clip (detection is ~15 ms a frame)."""
    haar = HaarFaceDetector()
    return [[main_face(haar.detect(f)) for f in frames[::FACE_STRIDE]] for _, frames, _ in decoded]


def test_haar_detects_faces_in_most_frames_of_every_class(decoded, faces):
    found: dict[str, list[bool]] = {}
    for (label, _, _), boxes in zip(decoded, faces):
        found.setdefault(label, []).extend(b is not None for b in boxes)
    rates = {label: float(np.mean(hits)) for label, hits in found.items()}
    assert min(rates.values()) >= 0.8, rates


def _face_features(frames: np.ndarray, boxes: list[Box | None]) -> np.ndarray:
    """Skin tint (R/B, G/B) and open-mouth area of the first detected face."""
    index, box = next((i, b) for i, b in enumerate(boxes) if b is not None)
    crop = crop_face(frames[index * FACE_STRIDE], box, margin=0.0, size=64).astype(np.float64)  # [64, 64, 3]
    cheeks = crop[28:40, 6:22].reshape(-1, 3).mean(axis=0)
    mouth = crop[38:54, 20:44].mean(axis=2)  # [16, 24] luma, around the lips
    return np.array([cheeks[0] / cheeks[2], cheeks[1] / cheeks[2], (mouth < 0.5 * cheeks.mean()).mean()])


def _spectrum(audio: np.ndarray, centre: float) -> np.ndarray:
    """Power spectrum [2049] of a 256 ms window at `centre` (fraction of the clip); 3.9 Hz bins at 16 kHz."""
    start = int(centre * len(audio)) - 2048
    return np.abs(np.fft.rfft(audio[start : start + 4096] * np.hanning(4096))) ** 2


def _pitch(audio: np.ndarray, centre: float) -> float:
    """The strongest spectral peak, which is the fundamental since harmonics fall off."""
    return float(np.argmax(_spectrum(audio, centre)[10:]) + 10) * 16_000 / 4096


def _voice_features(audio: np.ndarray) -> np.ndarray:
    """Early pitch, pitch change over the clip and harmonic richness (power above 1.5 f0 vs at f0)."""
    early, late = _pitch(audio, 0.2), _pitch(audio, 0.8)
    spectrum, f0_bin = _spectrum(audio, 0.2), early * 4096 / 16_000
    overtones = spectrum[int(1.5 * f0_bin) : int(10 * f0_bin)].sum()
    fundamental = spectrum[int(0.5 * f0_bin) : int(1.5 * f0_bin)].sum()
    return np.array([np.log2(early), np.log2(late / early), np.log10(overtones / fundamental)])


def _leave_one_out_accuracy(features: np.ndarray, labels: list[str]) -> float:
    """Nearest class centroid on z-scored features, each sample held out of its class's centroid."""
    z = (features - features.mean(0)) / (features.std(0) + 1e-9)
    labels_arr = np.array(labels)
    classes = sorted(set(labels))
    correct = 0
    for i in range(len(z)):
        keep = np.arange(len(z)) != i
        centroids = np.stack([z[keep & (labels_arr == c)].mean(0) for c in classes])
        correct += classes[int(np.argmin(((centroids - z[i]) ** 2).sum(1)))] == labels[i]
    return correct / len(z)


def test_classes_are_separable_from_the_video_alone(decoded, faces):
    features = np.stack([_face_features(frames, boxes) for (_, frames, _), boxes in zip(decoded, faces)])
    assert _leave_one_out_accuracy(features, [label for label, _, _ in decoded]) >= 0.9


def test_classes_are_separable_from_the_audio_alone(decoded):
    features = np.stack([_voice_features(audio) for _, _, audio in decoded])
    assert _leave_one_out_accuracy(features, [label for label, _, _ in decoded]) >= 0.9


@pytest.mark.parametrize("label", sorted(STYLES))
def test_voice_is_bounded_and_follows_its_contour(label):
    style = STYLES[label].voice
    audio = render_voice(style, np.random.default_rng(0), seconds=2.0, sample_rate=16_000)  # [32000]
    assert audio.shape == (32_000,) and audio.dtype == np.float32
    assert np.abs(audio).max() <= 1.0
    expected = style.glide * 0.6 + style.jump * (0.2 < style.jump_at < 0.8)  # semitones from 20% to 80%
    measured = 12 * np.log2(_pitch(audio, 0.8) / _pitch(audio, 0.2))
    assert measured == pytest.approx(expected, abs=1.5)
