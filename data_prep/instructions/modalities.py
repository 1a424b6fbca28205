"""Which modalities a prompt shows: their placeholder tokens, the media they need, the clues they reveal."""

from __future__ import annotations

from collections.abc import Sequence

from emoreason.constants import MODALITIES, MODALITY_SPECS, PLACEHOLDER_TOKENS
from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.schema import ClueSource, Sample

# Media a modality is computed from (see emoreason.constants.MEDIA_KINDS).
_MEDIA_FOR: dict[str, tuple[str, ...]] = {
    "audio": ("video", "audio"),
    "face": ("video", "image"),
    "video": ("video", "image"),
    "frame": ("video", "image"),
}

# Modalities that let a model perceive a clue. An answer must not cite evidence the model was not
# given: a target quoting the voice while no <audio> is in the prompt teaches it to hallucinate.
_CLUE_SEEN_IN: dict[str, frozenset[str]] = {
    "audio": frozenset({"audio"}),
    "face": frozenset({"face", "video", "frame", "frame_cls", "landmarks"}),
    "video": frozenset({"video", "frame", "frame_cls"}),
    "frame": frozenset({"video", "frame", "frame_cls"}),
}


def check_modalities(modalities: Sequence[str]) -> list[str]:
    """`modalities` as a list, if each is known and appears once; else ValueError."""
    for modality in modalities:
        if modality not in MODALITIES:
            raise ValueError(f"modalities: expected names among {list(MODALITIES)}, got {modality!r}")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities: expected each modality once, got {list(modalities)}")
    return list(modalities)


def placeholder_prefix(modalities: Sequence[str]) -> str:
    """The placeholder tokens in the given order, e.g. '<video> <audio>'."""
    return " ".join(PLACEHOLDER_TOKENS[m] for m in modalities)


def check_media(sample: Sample, modalities: Sequence[str]) -> None:
    """Raise InstructionError if the sample has no media a requested modality is computed from."""
    for modality in modalities:
        kinds = _MEDIA_FOR.get(modality, MODALITY_SPECS[modality].sources)
        if not any(getattr(sample.media, kind) for kind in kinds):
            needed = " or ".join(f"media.{kind}" for kind in kinds)
            raise InstructionError(sample.id, "media", f"modality {modality!r} needs {needed}, the sample has neither")


def visible_clues(sample: Sample, modalities: Sequence[str]) -> dict[str, str]:
    """The sample's clues the prompt lets a model perceive, in schema order (audio, face, video, frame, text).

    Text clues come from the subtitle, so they count as visible when the prompt includes one.
    """
    clues = (sample.targets.clues if sample.targets else None) or {}
    shown = set(modalities)
    visible = {}
    for source in ClueSource.__args__:
        if source not in clues:
            continue
        seen = bool(sample.subtitle) if source == "text" else bool(_CLUE_SEEN_IN.get(source, frozenset({source})) & shown)
        if seen:
            visible[source] = clues[source]
    return visible
