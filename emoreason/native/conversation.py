"""Conversations + processed media -> a native backbone's input ids, labels and media tensors.

Our conversations carry emoreason's placeholders (`<video>`, `<frame>`, `<face>`, `<audio>`). For a
native backbone the visual ones all mean "this sample's visual input": the first of them becomes the
backbone's video placeholder (or its image placeholder for a still image) and any other is removed;
`<audio>` becomes the audio placeholder. When face crops are given (the `face` modality), `<face>`
becomes them: one image placeholder per crop. Media without a placeholder goes in front of the first
user turn; a placeholder whose media is absent is removed. Nothing is filled in for absent media.

Labels come from token spans as in emoreason.model.processor: the chat template renders each prefix
of the conversation, and only assistant answers are labelled. The placeholder expansion (exactly the
processor's) happens on the rendered text before tokenizing, and the pad-token count per modality is
checked against the processed media.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from emoreason.constants import IGNORE_INDEX
from emoreason.model.processor import PromptTooLong
from emoreason.native.processor import ModalityInputs, NativeProcessor

_VISUAL = ("<video>", "<frame>", "<face>")
_AUDIO = "<audio>"
_FACE = "<face>"
_OURS = re.compile("|".join(re.escape(t) for t in (*_VISUAL, _AUDIO)) + r"\s*")
# Face crops are images to the backbone, so they have no placeholder of their own in its template; this
# marker stands for them in the rendered text until their expansion replaces it (it is never tokenized).
FACE_MARKER = "<|emoreason_face_crops|>"


@dataclasses.dataclass
class NativeEncoded:
    """One sample, ready to collate."""

    input_ids: list[int]
    labels: list[int]
    media: list[ModalityInputs]
    """Processed media in the order their placeholders appear."""

    def __len__(self) -> int:
        return len(self.input_ids)


def _turn(turn: Any) -> dict[str, str]:
    if isinstance(turn, Mapping):
        return {"role": turn["role"], "content": turn["content"]}
    return {"role": turn.role, "content": turn.content}


class NativeConversation:
    """Renders conversations for one backbone (its chat template, placeholders and pad tokens)."""

    def __init__(self, processor: NativeProcessor, system_prompt: str | None = None, max_length: int = 2048):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.system_prompt = system_prompt
        self.max_length = max_length

    def _messages(self, turns: Sequence[Any], media: Mapping[str, ModalityInputs]) -> list[dict[str, str]]:
        visual = next((m for m in ("video", "image") if m in media), None)
        used: set[str] = set()

        def place(match: re.Match) -> str:
            token = match.group(0).strip()
            modality = "audio" if token == _AUDIO else visual
            if token == _FACE and "face" in media and "face" not in used:
                used.add("face")
                return FACE_MARKER
            if modality is None or modality not in media or modality in used:
                return ""
            used.add(modality)
            return self._placeholder(modality)

        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        turns = [_turn(t) for t in turns]
        for turn in turns:
            if turn["role"] == "user":
                turn["content"] = _OURS.sub(place, turn["content"]).strip()
            elif _OURS.search(turn["content"]):
                raise ValueError(f"placeholder in a {turn['role']} turn; media goes in user turns")
        unplaced = "".join(self._placeholder(m) for m in (visual, "face", "audio") if m in media and m not in used)
        first_user = next((t for t in turns if t["role"] == "user"), None)
        if unplaced:
            if first_user is None:
                raise ValueError(f"media given for {sorted(media)} but the conversation has no user turn to place them in")
            first_user["content"] = unplaced + first_user["content"]
        return messages + turns

    def _placeholder(self, modality: str) -> str:
        return FACE_MARKER if modality == "face" else self.processor.arch.placeholders[modality]

    def _render(self, messages, generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _segments(self, messages, generation_prompt: bool) -> list[tuple[str, bool]]:
        segments: list[tuple[str, bool]] = []
        done = ""
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:i], True)
            full = self._render(messages[: i + 1], False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise ValueError("the chat template does not render conversations prefix by prefix; cannot locate answers")
            segments += [(prompt[len(done):], False), (full[len(prompt):], True)]
            done = full
        if generation_prompt or not segments:
            tail = self._render(messages, generation_prompt)
            if not tail.startswith(done):
                raise ValueError("the chat template does not render conversations prefix by prefix")
            if len(tail) > len(done):
                segments.append((tail[len(done):], False))
        return segments

    def encode(self, turns: Sequence[Any], media: Mapping[str, ModalityInputs], generation_prompt: bool = False) -> NativeEncoded:
        """Tokens, labels and media for `turns`; `media` maps each present modality to its processed item."""
        messages = self._messages(turns, media)
        pattern = re.compile("|".join(re.escape(self._placeholder(m)) for m in media)) if media else None
        out = NativeEncoded([], [], [])
        for text, is_answer in self._segments(messages, generation_prompt):
            if pattern is not None and not is_answer:
                def expand(match: re.Match) -> str:
                    modality = next(m for m in media if self._placeholder(m) == match.group(0))
                    out.media.append(media[modality])
                    return media[modality].text

                text = pattern.sub(expand, text)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.input_ids += ids
            out.labels += ids if is_answer else [IGNORE_INDEX] * len(ids)
        self._check_counts(out, media)
        if len(out) > self.max_length:
            raise PromptTooLong(f"conversation is {len(out)} tokens with media, over max_length={self.max_length}")
        return out

    def prompt_text(self, turns: Sequence[Any], modalities: Sequence[str]) -> str:
        """The generation prompt with the backbone's own placeholders left unexpanded, one per present modality:
        what an engine that runs the backbone's processor itself (vLLM's multi_modal_data) takes."""
        messages = self._messages(turns, dict.fromkeys(modalities))
        return self._render(messages, True).replace(FACE_MARKER, self.processor.arch.placeholders["image"])

    def _check_counts(self, out: NativeEncoded, media: Mapping[str, ModalityInputs]) -> None:
        ids = torch.tensor(out.input_ids)
        placed = [m.modality for m in out.media]
        for modality, item in media.items():
            if placed.count(modality) != 1:
                raise ValueError(f"{modality}: placed {placed.count(modality)} times in the prompt, expected once")
        # Tokens shared by two modalities (InternVL's <IMG_CONTEXT>) are checked together.
        by_token: dict[int, int] = {}
        for item in media.values():
            token = self.processor.pad_token_ids[item.modality]
            by_token[token] = by_token.get(token, 0) + item.num_tokens
        for token, expected in by_token.items():
            found = int((ids == token).sum())
            if found != expected:
                names = [m for m in media if self.processor.pad_token_ids[m] == token]
                raise ValueError(f"{'/'.join(names)}: {found} placeholder tokens in the prompt but the media fill {expected}")


def mm_token_type_ids(processor: NativeProcessor, input_ids: torch.Tensor) -> torch.Tensor:
    """0 text, 1 image, 2 video, 3 audio per position (what ProcessorMixin.create_mm_token_type_ids writes)."""
    types = torch.zeros_like(input_ids)
    for modality, code in (("image", 1), ("video", 2), ("audio", 3)):
        token = processor.pad_token_ids.get(modality)
        if token is not None:
            types[input_ids == token] = code
    return types


def collate(processor: NativeProcessor, batch: Sequence[NativeEncoded], padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad ids and labels; concatenate each media tensor along dim 0 in sample and placeholder order."""
    pad_id = processor.tokenizer.pad_token_id
    width = max(len(e) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        span = slice(0, len(e)) if padding_side == "right" else slice(width - len(e), width)
        ids[row, span] = torch.tensor(e.input_ids)
        labels[row, span] = torch.tensor(e.labels)
        mask[row, span] = 1
    out: dict[str, torch.Tensor] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    parts: dict[str, list[torch.Tensor]] = {}
    for e in batch:
        for item in e.media:
            for name, tensor in item.tensors.items():
                parts.setdefault(name, []).append(tensor)
    out.update({name: torch.cat(tensors) for name, tensors in parts.items()})
    if processor.arch.model_type == "qwen2_5_vl":
        out["mm_token_type_ids"] = mm_token_type_ids(processor, ids)
    return out
