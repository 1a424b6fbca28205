"""A synthetic emotion data set of real .mp4 clips in which ONLY the media carry the class.

Each clip shows a drawn frontal face whose mouth, brows, eyes and skin tint follow the class, and
has an AAC audio track whose pitch contour and timbre follow the class. Subtitles are identical for
every class, so a model can only reach high accuracy through the video or the audio, and falls to
chance without them. Used by tests, the demo and the end-to-end training test.

    python -m emoreason.data_prep.synthetic --out data/synth --num-per-class 8
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from emoreason.atomic import atomic_path
from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.data_prep.synthetic_render import (
    STYLES,
    ClassStyle,
    FaceLayout,
    FaceStyle,
    VoiceStyle,
    render_clip,
    render_face,
    render_voice,
    sample_layout,
)
from emoreason.progress import show_progress
from emoreason.schema import Landmarks, Media, Sample, Targets, write_samples

__all__ = [
    "STYLES",
    "SUBTITLE",
    "ClassStyle",
    "FaceLayout",
    "FaceStyle",
    "SyntheticConfig",
    "VoiceStyle",
    "generate_dataset",
    "main",
    "render_clip",
    "render_face",
    "render_voice",
    "sample_layout",
    "write_clip",
]

logger = logging.getLogger(__name__)

SUBTITLE = "I can't believe this is happening right now."
CODECS = {"h264": "libx264", "mpeg4": "mpeg4"}
DEFAULT_CLASSES = ["happy", "sad", "angry", "surprised"]


@dataclass
class SyntheticConfig:
    num_per_class: int = 8
    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CLASSES))
    """Any subset of STYLES' keys."""
    seed: int = 0
    width: int = 160
    height: int = 160
    fps: int = 12
    seconds: float = 2.0
    codec: str = "h264"
    """'h264' (libx264, falling back to mpeg4 where missing) or 'mpeg4'."""
    with_audio: bool = True
    with_landmarks: bool = True
    """Write the drawn face's 68 landmarks per frame into each sample's `landmarks` annotation."""

    def __post_init__(self) -> None:
        unknown = [c for c in self.classes if c not in STYLES]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct names from {sorted(STYLES)}, got {self.classes}")
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        # yuv420p stores chroma at half resolution, so both sides must be even.
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 64:
            raise ValueError(f"width and height must be even and >= 64, got {self.width}x{self.height}")
        if self.num_per_class < 1 or self.fps < 1 or self.seconds < 0.1:
            raise ValueError("num_per_class and fps must be >= 1 and seconds >= 0.1")


def resolve_encoder(codec: str) -> str:
    """The FFmpeg encoder for 'h264' or 'mpeg4'; h264 falls back to mpeg4 without libx264."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    encoder = CODECS[codec]
    if encoder not in av.codecs_available:
        logger.warning("encoder %s is not in this PyAV build; writing mpeg4 instead", encoder)
        encoder = "mpeg4"
    return encoder


def write_clip(
    path: str | os.PathLike,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: int,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    codec: str = "h264",
) -> str:
    """Write frames [n, h, w, 3] RGB uint8 and mono audio [s] to an .mp4, atomically.

    Returns the video encoder used. A writer killed midway leaves the previous file (or none) at
    `path`, never half a clip.
    """
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames [n, h, w, 3] uint8, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even frame sides, got {width}x{height}")
    encoder = resolve_encoder(codec)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        video = container.add_stream(encoder, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if encoder == "libx264":
            video.options = {"preset": "ultrafast", "crf": "18", "threads": "1"}
        else:
            # mpeg4's default 200 kb/s smears a small face; ~2 bits per pixel keeps it crisp.
            video.bit_rate = 2 * width * height * fps
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
            sound.bit_rate = 48_000
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            _encode_audio(container, sound, audio, sample_rate)
    return encoder


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    chunk = 1024  # the AAC frame size
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)  # [s]
    for start in range(0, len(samples), chunk):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + chunk], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def sample_id(index: int) -> str:
    return f"syn_{index:05d}"


def generate_dataset(out_dir: str | os.PathLike, config: SyntheticConfig | None = None) -> list[Sample]:
    """Write out_dir/clips/<id>.mp4 and out_dir/samples.jsonl; the same seed gives the same files.

    Classes are interleaved (sample i has class i % K), so every prefix is near balanced.
    """
    config = config or SyntheticConfig()
    out_dir = Path(out_dir)
    total = config.num_per_class * len(config.classes)
    samples = []
    for index in tqdm(range(total), desc="synthetic clips", unit="clip", disable=total <= 8 or not show_progress()):
        samples.append(_generate_sample(out_dir, config, index))
    write_samples(out_dir / "samples.jsonl", samples)
    return samples


def _generate_sample(out_dir: Path, config: SyntheticConfig, index: int) -> Sample:
    label = config.classes[index % len(config.classes)]
    style = STYLES[label]
    # One stream per sample, so a clip does not change when the data set grows or shrinks.
    rng = np.random.default_rng([config.seed, index])
    num_frames = max(1, int(round(config.seconds * config.fps)))
    frames, points = render_clip(style.face, rng, num_frames, config.width, config.height, with_landmarks=True)
    audio = render_voice(style.voice, rng, config.seconds, AUDIO_SAMPLE_RATE) if config.with_audio else None
    rel = f"clips/{sample_id(index)}.mp4"
    encoder = write_clip(out_dir / rel, frames, audio, config.fps, AUDIO_SAMPLE_RATE, config.codec)
    return Sample(
        id=sample_id(index),
        media=Media(video=rel),
        subtitle=SUBTITLE,
        targets=Targets(emotion=label),
        # Two decimals of a pixel: the annotation stays small, and far finer than the class differences.
        landmarks=Landmarks(points=np.round(points, 2).tolist(), fps=config.fps) if config.with_landmarks else None,
        source={"dataset": "synthetic", "seed": config.seed, "index": index, "encoder": encoder},
    )


def main(argv: list[str] | None = None) -> int:
    from emoreason.cli_args import HelpFormatter

    parser = argparse.ArgumentParser(prog="emoreason synth", description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (clips/ and samples.jsonl)")
    parser.add_argument("--num-per-class", type=int, default=SyntheticConfig.num_per_class, help="clips per emotion class")
    parser.add_argument("--seed", type=int, default=SyntheticConfig.seed, help="seed of the drawn faces and tones")
    parser.add_argument("--classes", default=",".join(DEFAULT_CLASSES), help=f"comma-separated, from {sorted(STYLES)}")
    parser.add_argument("--codec", choices=sorted(CODECS), default="h264", help="video codec of the clips")
    parser.add_argument("--no-audio", action="store_true", help="write video-only clips")
    args = parser.parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    try:
        config = SyntheticConfig(
            num_per_class=args.num_per_class,
            classes=classes,
            seed=args.seed,
            codec=args.codec,
            with_audio=not args.no_audio,
        )
    except ValueError as exc:
        parser.error(str(exc))
    samples = generate_dataset(args.out, config)
    print(f"wrote {len(samples)} clips ({len(classes)} classes) to {Path(args.out) / 'samples.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
