"""Names every stage agrees on: modalities, placeholder tokens, sampling rates, the ignore index."""

from __future__ import annotations

import dataclasses

# Media kinds a sample can point at; modalities are derived from them (face/video/frame from a video
# or an image, audio from a video's track or an audio file).
MEDIA_KINDS: tuple[str, ...] = ("video", "audio", "image")


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """One row of the modality table: everything a stage needs to know about a modality."""

    name: str
    media_index: int
    """Tag of this modality's positions in `media_ids` (0 is text)."""
    sources: tuple[str, ...]
    """Media kinds that can feed it, preferred first."""
    visual: bool
    """Computed from decoded frames (the visual modalities share one decode)."""
    absent_reason: str
    """Reason code when no source is present."""
    encoder_input: str
    """What its encoder reads: "waveform", "face_crops" (the main face of each sampled frame), "clips"
    (the sampled frames as video clips), "frames" (each sampled frame as an image) or "landmarks" (68 facial
    points per frame, annotated or detected). Modalities reading "frames" with the same checkpoint, layer
    and output share one forward pass, each with its own pooling (Emotion-LLaMA's patch and CLS tokens)."""

    def lacks_message(self, kinds: set[str]) -> str:
        """Why this modality is absent from a sample whose media kinds are `kinds`."""
        if self.name == "video" and "image" in kinds:
            return "a still image has no motion for the video encoder"
        if len(self.sources) == 1:
            return f"sample has no media.{self.sources[0]}"
        return "sample has neither " + " nor ".join(f"media.{k}" for k in self.sources)


# The modality table. Modality-first naming throughout: `audio_encoder`, `face_projector`, ... keyed by
# these names; the order is the order of placeholders in prompts and of projectors in a model.
MODALITY_TABLE: tuple[ModalitySpec, ...] = (
    # A separate audio file wins over the video's own track.
    ModalitySpec("audio", 1, ("audio", "video"), visual=False, absent_reason="no_audio", encoder_input="waveform"),
    ModalitySpec("face", 2, ("video", "image"), visual=True, absent_reason="no_video", encoder_input="face_crops"),
    # A still image has no motion: only a video feeds the video encoder.
    ModalitySpec("video", 3, ("video",), visual=True, absent_reason="no_video", encoder_input="clips"),
    ModalitySpec("frame", 4, ("video", "image"), visual=True, absent_reason="no_video", encoder_input="frames"),
    # A second input from the frames, e.g. the CLS token of the checkpoint whose patches feed `frame`.
    ModalitySpec("frame_cls", 5, ("video", "image"), visual=True, absent_reason="no_video", encoder_input="frames"),
    # The main face's 68 points per sampled frame: from the sample's annotation or a landmark detector.
    ModalitySpec("landmarks", 6, ("video", "image"), visual=True, absent_reason="no_video", encoder_input="landmarks"),
)

MODALITIES: tuple[str, ...] = tuple(spec.name for spec in MODALITY_TABLE)
VISUAL_MODALITIES: tuple[str, ...] = tuple(spec.name for spec in MODALITY_TABLE if spec.visual)
MODALITY_SPECS: dict[str, ModalitySpec] = {spec.name: spec for spec in MODALITY_TABLE}

PLACEHOLDER_TOKENS: dict[str, str] = {m: f"<{m}>" for m in MODALITIES}

# Loss is ignored on prompt, media and padding positions (the value HF losses skip).
IGNORE_INDEX = -100

# Every audio encoder in the HuBERT / wav2vec2 / Whisper family expects 16 kHz mono.
AUDIO_SAMPLE_RATE = 16_000

# AffectGPT-style pre-fusion tokens (audio and video fused before the LLM) sit at this placeholder.
FUSION_TOKEN = "<fusion>"

# Positions in a sequence are tagged 0 for text and by this index for each media kind, so the model
# knows where each modality's projected tokens go without adding placeholder tokens to the vocabulary.
MEDIA_INDEX: dict[str, int] = {spec.name: spec.media_index for spec in MODALITY_TABLE} | {"fusion": len(MODALITY_TABLE) + 1}

# Facial landmarks follow the iBUG 68-point layout (dlib, FAN, OpenFace), as Face-LLaVA reads them.
NUM_LANDMARKS = 68
