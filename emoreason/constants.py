"""Names every stage agrees on: modalities, placeholder tokens, sampling rates, the ignore index."""

from __future__ import annotations

# Modality-first naming throughout: `audio_encoder`, `face_projector`, ... keyed by these strings.
MODALITIES: tuple[str, ...] = ("audio", "face", "video", "frame")

# Media kinds a sample can point at; modalities are derived from them (face/video/frame from a video
# or an image, audio from a video's track or an audio file).
MEDIA_KINDS: tuple[str, ...] = ("video", "audio", "image")

PLACEHOLDER_TOKENS: dict[str, str] = {m: f"<{m}>" for m in MODALITIES}

# Loss is ignored on prompt, media and padding positions (the value HF losses skip).
IGNORE_INDEX = -100

# Every audio encoder in the HuBERT / wav2vec2 / Whisper family expects 16 kHz mono.
AUDIO_SAMPLE_RATE = 16_000

# AffectGPT-style pre-fusion tokens (audio and video fused before the LLM) sit at this placeholder.
FUSION_TOKEN = "<fusion>"

# Positions in a sequence are tagged 0 for text and by this index for each media kind, so the model
# knows where each modality's projected tokens go without adding placeholder tokens to the vocabulary.
MEDIA_INDEX: dict[str, int] = {"audio": 1, "face": 2, "video": 3, "frame": 4, "fusion": 5}
