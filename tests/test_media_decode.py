import numpy as np
import pytest

from emoreason.media.audio import decode_audio
from emoreason.media.errors import MediaError
from emoreason.media.image import decode_image
from emoreason.media.video import FrameSampling, decode_frames, sample_frame_indices
from emoreason.config import ConfigError


@pytest.mark.parametrize("name", ["h264_aac.mp4", "mpeg4_aac.mp4", "no_audio.mp4"])
def test_uniform_frames(media_dir, name):
    decoded = decode_frames(media_dir / name, FrameSampling(num_frames=6))
    assert decoded.frames.shape == (6, 96, 128, 3) and decoded.frames.dtype == np.uint8
    assert decoded.source_fps == pytest.approx(12.0)
    assert decoded.duration == pytest.approx(2.0)
    # Brightness encodes the source frame index, so the sampled frames must get brighter in order.
    brightness = decoded.frames.mean(axis=(1, 2, 3))
    assert np.all(np.diff(brightness) > 0)
    np.testing.assert_allclose(decoded.times, [2 / 12, 6 / 12, 10 / 12, 14 / 12, 18 / 12, 22 / 12])


def test_fixed_fps_and_resize(media_dir):
    decoded = decode_frames(media_dir / "h264_aac.mp4", FrameSampling(num_frames=None, fps=3, short_side=48))
    assert decoded.frames.shape == (6, 48, 64, 3)
    np.testing.assert_allclose(decoded.times, np.arange(6) / 3)


def test_fps_sampling_is_capped():
    assert len(sample_frame_indices(10_000, 25.0, FrameSampling(num_frames=None, fps=25, max_frames=64))) == 64


def test_short_clip_repeats_frames():
    assert sample_frame_indices(3, 25.0, FrameSampling(num_frames=6)).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("kwargs", [{"num_frames": 8, "fps": 2.0}, {"num_frames": None}, {"num_frames": 0}])
def test_bad_sampling(kwargs):
    with pytest.raises(ConfigError):
        FrameSampling(**kwargs)


@pytest.mark.parametrize(
    "name, reason",
    [("truncated.mp4", "unreadable"), ("empty.mp4", "empty"), ("not_media.mp4", "not_media"), ("missing.mp4", "missing_file")],
)
def test_bad_video_files(media_dir, name, reason):
    with pytest.raises(MediaError) as info:
        decode_frames(media_dir / name, FrameSampling())
    assert info.value.reason == reason
    assert name in str(info.value)


def test_audio_track_of_a_video(media_dir):
    wave = decode_audio(media_dir / "h264_aac.mp4")
    assert wave.dtype == np.float32 and wave.ndim == 1
    # AAC adds encoder priming/padding: allow a few frames of 1024 samples.
    assert 32000 <= len(wave) <= 32000 + 3 * 1024
    spectrum = np.abs(np.fft.rfft(wave[2000:18000]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 16000-sample window -> 1 Hz bins


def test_stereo_44k_is_downmixed_and_resampled(media_dir):
    wave = decode_audio(media_dir / "stereo_44k.wav")
    assert len(wave) == pytest.approx(1.5 * 16000, abs=2)
    spectrum = np.abs(np.fft.rfft(wave[:16000]))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)  # 1 s window -> 1 Hz bins


@pytest.mark.parametrize(
    "name, reason",
    [
        ("no_audio.mp4", "no_audio"),
        ("truncated.mp4", "unreadable"),
        ("empty.mp4", "empty"),
        ("not_media.mp4", "not_media"),
        ("missing.mp4", "missing_file"),
    ],
)
def test_bad_audio(media_dir, name, reason):
    with pytest.raises(MediaError) as info:
        decode_audio(media_dir / name)
    assert info.value.reason == reason


def test_audio_length_limit(media_dir):
    with pytest.raises(MediaError) as info:
        decode_audio(media_dir / "h264_aac.mp4", max_seconds=0.5)
    assert info.value.reason == "too_long"


def test_images(media_dir):
    image = decode_image(media_dir / "still.png")
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8
    for name, reason in [("broken.png", "unreadable"), ("not_media.mp4", "not_media"), ("empty.mp4", "empty")]:
        with pytest.raises(MediaError) as info:
            decode_image(media_dir / name)
        assert info.value.reason == reason, name


def test_decompression_bomb_image_is_too_large(media_dir, tmp_path):
    from conftest import write_png_bomb

    # 400 megapixels: Pillow's own bomb check fires as the header is read.
    with pytest.raises(MediaError) as info:
        decode_image(media_dir / "bomb.png")
    assert info.value.reason == "too_large"
    # 64 megapixels, under Pillow's limit: ours refuses it before decoding.
    with pytest.raises(MediaError) as info:
        decode_image(write_png_bomb(tmp_path / "big.png", 8000), max_pixels=40_000_000)
    assert info.value.reason == "too_large" and "8000x8000" in str(info.value)
    assert decode_image(media_dir / "still.png", max_pixels=60 * 80).shape == (60, 80, 3)


def test_audio_only_mp4_in_the_video_field_has_no_video(media_dir):
    with pytest.raises(MediaError) as info:
        decode_frames(media_dir / "audio_only.mp4", FrameSampling())
    assert info.value.reason == "no_video" and "audio only" in str(info.value)


@pytest.mark.parametrize("sampling", [FrameSampling(), FrameSampling(num_frames=None, fps=1.0, short_side=32)], ids=["uniform", "fps+resize"])
def test_narrow_clip_decodes_where_decord_cannot(media_dir, sampling):
    """A valid 16x16 clip: decord 0.6 fails on it (its RGB rows need padding); the frames still come back right."""
    decoded = decode_frames(media_dir / "tiny16.mp4", sampling)
    side = sampling.short_side or 16
    assert decoded.frames.shape[1:] == (side, side, 3) and decoded.duration == pytest.approx(24.0)
    # gradient_frames: brightness encodes the frame index (600 frames, 0..255)
    expected = decoded.times * 25 * 255 // 599
    assert np.abs(decoded.frames[:, side // 2, side // 2].mean(axis=1) - expected).max() < 8
    assert len(decoded.frames) == (8 if sampling.num_frames else 24)


def test_decoder_messages_carry_no_build_paths():
    from emoreason.media.video import library_message

    raw = RuntimeError("[00:46:50] /github/workspace/src/runtime/ndarray.cc:171: Check failed: from_size == to_size (1536 vs. 768)\nStack trace:\n  File /x/y.so")
    assert library_message(raw) == "Check failed: from_size == to_size (1536 vs. 768)"


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_folder_or_fifo_is_not_a_file(tmp_path, kind):
    import os

    path = tmp_path / "clip.mp4"
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    for decode in (lambda: decode_frames(path, FrameSampling()), lambda: decode_audio(path), lambda: decode_image(path)):
        with pytest.raises(MediaError) as info:
            decode()  # a fifo is never opened: that would block
        assert info.value.reason == "not_a_file" and f"a {kind}" in str(info.value)
