"""Schema samples -> native model inputs: the one step a training dataset or a server calls per sample."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from emoreason.features.featurizer import sample_files
from emoreason.model.generation import prompt_turns
from emoreason.native.conversation import NativeConversation, NativeEncoded
from emoreason.native.featurizer import NativeFeaturized, NativeFeaturizer
from emoreason.schema import Sample


def encode_sample(sample: Sample, data_root: str | os.PathLike, featurizer: NativeFeaturizer, conversation: NativeConversation,
                  generation_prompt: bool = False, modalities: Sequence[str] | None = None,
                  turns: Sequence[Any] | None = None) -> tuple[NativeEncoded, NativeFeaturized]:
    """The sample's conversation (or `turns`) with its media; MediaError when a media file is at fault.

    generation_prompt=True drops the final assistant answer and ends on the assistant's turn to speak.
    """
    turns = list(turns if turns is not None else sample.conversations or [])
    if not turns:
        raise ValueError(f"sample {sample.id}: no conversations (build them with `emoreason instruct`)")
    media = featurizer.featurize(sample_files(sample, data_root), modalities)
    media.raise_for_fault()
    if generation_prompt:
        turns = prompt_turns(turns)
    return conversation.encode(turns, media.inputs, generation_prompt=generation_prompt), media
