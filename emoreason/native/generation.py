"""Text generation for the native kind: the backbone's own `generate` on processed media.

Prompts are left-padded (decoder-only generation continues from the last position of every row)
and collated like training batches; the eos ids come from the tokenizer's end-of-turn token and
the generation config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from emoreason.native.conversation import NativeConversation, collate
from emoreason.native.processor import ModalityInputs


def eos_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def generate_texts(model, conversation: NativeConversation, prompts: Sequence[tuple[Sequence[Any], Mapping[str, ModalityInputs]]],
                   max_new_tokens: int = 64, **generate_kwargs) -> list[str]:
    """Greedy (unless generate_kwargs say otherwise) answers for (turns, processed media) prompts.

    model: a NativeModel, or the plain transformers model of an exported directory.
    """
    processor = conversation.processor
    encoded = [conversation.encode(turns, media, generation_prompt=True) for turns, media in prompts]
    batch = collate(processor, encoded, padding_side="left")
    batch.pop("labels")
    tokenizer = processor.tokenizer
    backbone = getattr(model, "backbone", model)
    kwargs = {"do_sample": False, "max_new_tokens": max_new_tokens, "eos_token_id": eos_ids(backbone, tokenizer),
              "pad_token_id": tokenizer.pad_token_id} | generate_kwargs
    out = model.generate(**batch, **kwargs)
    new = out[:, batch["input_ids"].shape[1]:]
    return [tokenizer.decode(row, skip_special_tokens=True) for row in new]
