"""Conversations + features -> token ids, media position tags and labels.

Placeholders are expanded here, before collation, never in `forward` (HF Llava's processor-side
expansion): `<audio>` becomes exactly as many positions as the audio projector emits for this
sample, so the model never changes a sequence's length. Those positions hold the pad id and are
tagged in `media_ids` with the modality's index (emoreason.constants.MEDIA_INDEX); placeholder
strings never reach the tokenizer, so the LLM's vocabulary and output head stay untouched.

Labels come from token spans: each chat-template segment (prompt or answer) is tokenized on its
own and only assistant answers are labelled; prompt, media and padding positions get IGNORE_INDEX.
A modality the sample lacks has its placeholder removed from the prompt.

With a recipe's prompt template (emoreason.model.prompt_template) the first user turn is that template:
each media slot is filled with a private marker character pair, and only those markers become media
positions, so the recipe's literal tags (`<video>...</video>`) stay text; placeholders written in the
conversation are dropped (the template places the media).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emoreason.constants import FUSION_TOKEN, IGNORE_INDEX, MEDIA_INDEX, PLACEHOLDER_TOKENS
from emoreason.model.prompt_template import MEDIA_SLOTS, PromptTemplate

PLACEHOLDER_TO_MEDIA = {token: m for m, token in PLACEHOLDER_TOKENS.items()} | {FUSION_TOKEN: "fusion"}
_PLACEHOLDER_RE = re.compile("(" + "|".join(re.escape(t) for t in PLACEHOLDER_TO_MEDIA) + ")")
# A template's media slots become these markers: Unicode private-use characters, which no tokenizer is fed
# (they are split out before tokenizing) and which are stripped from the conversation's own text.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"
SLOT_MARKERS = {slot: f"{_MARK_OPEN}{slot}{_MARK_CLOSE}" for slot in MEDIA_SLOTS}
MARKER_TO_MEDIA = {marker: slot for slot, marker in SLOT_MARKERS.items()}
_MARKER_RE = re.compile("(" + "|".join(re.escape(t) for t in MARKER_TO_MEDIA) + ")")


class PromptTooLong(ValueError):
    """A conversation with more tokens than the processor's max_length."""


@dataclasses.dataclass
class EncodedConversation:
    input_ids: list[int]
    media_ids: list[int]  # 0 for text, MEDIA_INDEX[m] where modality m's tokens go
    labels: list[int]  # IGNORE_INDEX except on assistant answers

    def __len__(self) -> int:
        return len(self.input_ids)


def _turn_dict(turn: Any) -> dict[str, str]:
    if isinstance(turn, Mapping):
        return {"role": turn["role"], "content": turn["content"]}
    return {"role": turn.role, "content": turn.content}


def drop_placeholders(text: str, keep: set[str]) -> str:
    """Remove placeholders of media not in `keep`, with the whitespace after them."""

    def replace(match: re.Match) -> str:
        return match.group(0) if PLACEHOLDER_TO_MEDIA[match.group(1)] in keep else ""

    return re.sub(_PLACEHOLDER_RE.pattern + r"\s*", replace, text).strip()


class EmotionProcessor:
    """Owns the tokenizer and the rule for how many positions each modality's features take."""

    def __init__(
        self,
        tokenizer,
        count_tokens: Callable[[str, int], int],
        system_prompt: str | None = None,
        max_length: int = 1024,
        fusion_modalities: Sequence[str] = (),
        fusion_tokens: int = 0,
        prompt: PromptTemplate | None = None,
    ):
        """count_tokens(modality, num_feature_tokens) -> positions its projector emits; prompt: the recipe's
        template for the first user turn (None: our placeholders, as the conversation writes them)."""
        if prompt is not None and prompt.chat_template is not None:
            tokenizer.chat_template = prompt.chat_template  # the recipe's turn format; saved with the tokenizer
        if tokenizer.chat_template is None:
            raise ValueError("the LLM's tokenizer has no chat template; emoreason builds prompts with it")
        self.tokenizer = tokenizer
        self.count_tokens = count_tokens
        self.system_prompt = system_prompt
        self.max_length = max_length
        self.fusion_modalities = list(fusion_modalities)
        self.fusion_tokens = fusion_tokens
        self.prompt = prompt
        self._split_re, self._piece_media = (_PLACEHOLDER_RE, PLACEHOLDER_TO_MEDIA) if prompt is None else (_MARKER_RE, MARKER_TO_MEDIA)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._max_token_bytes: int | None = None

    @property
    def max_token_bytes(self) -> int:
        """The most UTF-8 bytes any one token stands for (at least 1): n bytes of text are >= n / this tokens."""
        if self._max_token_bytes is None:
            # Vocabulary strings are byte-level (GPT-2 style) or sentencepiece pieces: their encoded
            # length is at least the text they stand for, so this bound never refuses a prompt that fits.
            self._max_token_bytes = max((len(t.encode("utf-8")) for t in self.tokenizer.get_vocab()), default=1) or 1
        return self._max_token_bytes

    def check_prompt_length(self, turns: Sequence[Any]) -> None:
        """PromptTooLong when the text of `turns` alone is over max_length tokens; ValueError for a bad conversation.

        Costs no media work, and refuses a huge text by its byte count before tokenizing any of it.
        """
        texts = [_turn_dict(t)["content"] for t in turns] + ([self.system_prompt] if self.system_prompt else [])
        size = sum(len(t.encode("utf-8")) for t in texts)
        if size > self.max_length * self.max_token_bytes:
            at_least = size // self.max_token_bytes
            raise PromptTooLong(f"conversation is at least {at_least} tokens of text ({size} bytes), over max_length={self.max_length}")
        self.encode(turns, {}, generation_prompt=True)

    def _messages(self, turns: Sequence[Any], present: set[str], fields: Mapping[str, str | None]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        turns = [_turn_dict(t) for t in turns]
        if self.prompt is not None:
            return messages + self._templated(turns, present, fields)
        written = {PLACEHOLDER_TO_MEDIA[p] for t in turns for p in _PLACEHOLDER_RE.findall(t["content"])}
        # Media without a placeholder anywhere goes in front of the first user turn (chat clients
        # attach media without writing placeholders).
        unplaced = " ".join(PLACEHOLDER_TOKENS[m] for m in PLACEHOLDER_TOKENS if m in present and m not in written)
        first_user = True
        for turn in turns:
            content = drop_placeholders(turn["content"], present)
            if turn["role"] == "user" and first_user:
                content = self._add_fusion(f"{unplaced} {content}".strip() if unplaced else content, present)
                first_user = False
            messages.append({"role": turn["role"], "content": content})
        return messages

    def _templated(self, turns: list[dict[str, str]], present: set[str], fields: Mapping[str, str | None]) -> list[dict[str, str]]:
        """The turns with the first user turn rendered through the recipe's template (its slots hold the media)."""
        out, first_user = [], True
        for turn in turns:
            content = drop_placeholders(turn["content"].replace(_MARK_OPEN, "").replace(_MARK_CLOSE, ""), set())
            if turn["role"] == "user" and first_user:
                content = self.prompt.render(content, {m: SLOT_MARKERS[m] for m in present}, fields)
                first_user = False
            out.append({"role": turn["role"], "content": content})
        return out

    def _add_fusion(self, content: str, present: set[str]) -> str:
        # The fused token follows the media it fuses, once, in the first user turn.
        if not self.fusion_tokens or not all(m in present for m in self.fusion_modalities):
            return content
        last = max((content.rfind(PLACEHOLDER_TOKENS[m]) + len(PLACEHOLDER_TOKENS[m]) for m in self.fusion_modalities), default=0)
        return content[:last] + " " + FUSION_TOKEN + content[last:]

    def _render(self, messages: list[dict[str, str]], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _segments(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[tuple[str, bool]]:
        """(text, is_answer) pieces whose concatenation is the rendered conversation."""
        segments: list[tuple[str, bool]] = []
        done = ""
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:i], generation_prompt=True)
            full = self._render(messages[: i + 1], generation_prompt=False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise ValueError("the chat template does not render conversations prefix by prefix; cannot locate answers")
            segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
            done = full
        if generation_prompt or not segments:
            tail = self._render(messages, generation_prompt=generation_prompt)
            if not tail.startswith(done):
                raise ValueError("the chat template does not render conversations prefix by prefix")
            if len(tail) > len(done):
                segments.append((tail[len(done) :], False))
        return segments

    def encode(self, turns: Sequence[Any], feature_lengths: Mapping[str, int], generation_prompt: bool = False,
               fields: Mapping[str, str | None] | None = None) -> EncodedConversation:
        """Tokens for `turns`; feature_lengths maps each modality the sample has to its feature token count.

        fields: the sample's `subtitle` and instruction `task` for a prompt template's text slots (ignored without one).

        With generation_prompt=True the conversation should end on a user turn; the result is the
        prompt to generate from (all labels ignored).
        """
        # A modality of zero positions (landmarks only the landmark attention reads) has no placeholder.
        counts = {m: c for m, n in feature_lengths.items() if n > 0 and (c := self.count_tokens(m, n)) > 0}
        present = set(counts)
        if self.fusion_tokens and all(m in present for m in self.fusion_modalities):
            counts["fusion"] = self.fusion_tokens
            present.add("fusion")
        messages = self._messages(turns, present, fields or {})
        out = EncodedConversation([], [], [])
        seen: set[str] = set()
        for text, is_answer in self._segments(messages, generation_prompt):
            for piece in self._split_re.split(text):
                if not piece:
                    continue
                media = self._piece_media.get(piece)
                if media is None:
                    ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"]
                    out.input_ids += ids
                    out.media_ids += [0] * len(ids)
                    out.labels += ids if is_answer else [IGNORE_INDEX] * len(ids)
                    continue
                if is_answer:
                    raise ValueError(f"placeholder {piece} in an assistant answer; media goes in user turns")
                if media in seen:
                    raise ValueError(f"placeholder {piece} appears twice; each sample has one {media} input")
                seen.add(media)
                out.input_ids += [self.pad_id] * counts[media]
                out.media_ids += [MEDIA_INDEX[media]] * counts[media]
                out.labels += [IGNORE_INDEX] * counts[media]
        missing = present - seen
        if missing:
            raise ValueError(f"features given for {sorted(missing)} but the conversation has no user turn to place them in")
        if len(out) > self.max_length:
            with_media = " with media" if counts else ""
            raise PromptTooLong(f"conversation is {len(out)} tokens{with_media}, over max_length={self.max_length}")
        return out
