import pytest
from transformers import AutoTokenizer

from emoreason.constants import IGNORE_INDEX, MEDIA_INDEX
from emoreason.model.processor import EmotionProcessor, drop_placeholders


def per_token(modality, n):
    return n  # a linear/MLP projector keeps one position per feature token


def pooled(modality, n):
    return 3 if n else 0  # an attention pool to 3 tokens


@pytest.fixture(scope="module")
def tokenizer(tiny_llm_dir):
    return AutoTokenizer.from_pretrained(tiny_llm_dir)


def conversation(*answers, prompt="<video> <audio> What emotion is shown?"):
    turns = []
    for i, answer in enumerate(answers):
        turns.append({"role": "user", "content": prompt if i == 0 else "And why?"})
        turns.append({"role": "assistant", "content": answer})
    return turns


def test_placeholders_expand_to_projector_counts(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token)
    enc = proc.encode(conversation("happy"), {"video": 5, "audio": 7})
    assert enc.media_ids.count(MEDIA_INDEX["video"]) == 5
    assert enc.media_ids.count(MEDIA_INDEX["audio"]) == 7
    # Each modality's positions are one contiguous run, in prompt order, and hold the pad id.
    video = [i for i, m in enumerate(enc.media_ids) if m == MEDIA_INDEX["video"]]
    audio = [i for i, m in enumerate(enc.media_ids) if m == MEDIA_INDEX["audio"]]
    assert video == list(range(video[0], video[0] + 5)) and audio[0] > video[-1]
    assert all(enc.input_ids[i] == proc.pad_id for i in video + audio)
    assert len(enc.input_ids) == len(enc.media_ids) == len(enc.labels)
    pooled_enc = EmotionProcessor(tokenizer, pooled).encode(conversation("happy"), {"video": 5, "audio": 7})
    assert pooled_enc.media_ids.count(MEDIA_INDEX["video"]) == 3


def test_labels_cover_only_assistant_answers(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token)
    enc = proc.encode(conversation("happy", "a bright rising voice"), {"video": 2, "audio": 2})
    labelled = [t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE_INDEX]
    text = tokenizer.decode(labelled)
    assert text.startswith("happy<|im_end|>") and "a bright rising voice<|im_end|>" in text
    assert "user" not in text and "What emotion" not in text
    for i, m in enumerate(enc.media_ids):
        if m:
            assert enc.labels[i] == IGNORE_INDEX
    # Labels are the tokens themselves (the model shifts them), not a re-tokenised string.
    assert all(l == t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE_INDEX)


def test_encoding_matches_the_chat_template(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token, system_prompt="You read emotions.")
    turns = conversation("sad", prompt="What emotion is shown?")
    enc = proc.encode(turns, {})
    rendered = tokenizer.apply_chat_template([{"role": "system", "content": "You read emotions."}] + turns, tokenize=False)
    assert tokenizer.decode(enc.input_ids) == rendered


def test_missing_modality_drops_its_placeholder(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token)
    enc = proc.encode(conversation("happy"), {"video": 4})
    text = tokenizer.decode([t for t, m in zip(enc.input_ids, enc.media_ids) if m == 0])
    assert "<audio>" not in text and MEDIA_INDEX["audio"] not in enc.media_ids
    assert "What emotion is shown?" in text
    assert drop_placeholders("<video> <audio> Why?", {"video"}) == "<video> Why?"
    assert drop_placeholders("<video>\n<audio>\nWhy?", set()) == "Why?"


def test_generation_prompt_and_unplaced_media(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token)
    enc = proc.encode([{"role": "user", "content": "How does she feel?"}], {"face": 2}, generation_prompt=True)
    text = tokenizer.decode(enc.input_ids)
    assert text.endswith("<|im_start|>assistant\n")
    assert all(l == IGNORE_INDEX for l in enc.labels)
    # Media sent without a placeholder (as chat clients do) goes at the start of the first user turn.
    first_media = enc.media_ids.index(MEDIA_INDEX["face"])
    assert tokenizer.decode(enc.input_ids[:first_media]) == "<|im_start|>user\n"


def test_fusion_tokens_follow_the_fused_media(tokenizer):
    proc = EmotionProcessor(tokenizer, per_token, fusion_modalities=["audio", "video"], fusion_tokens=2)
    both = proc.encode(conversation("happy"), {"video": 3, "audio": 3})
    assert both.media_ids.count(MEDIA_INDEX["fusion"]) == 2
    assert both.media_ids.index(MEDIA_INDEX["fusion"]) > max(i for i, m in enumerate(both.media_ids) if m == MEDIA_INDEX["audio"])
    video_only = proc.encode(conversation("happy"), {"video": 3})
    assert MEDIA_INDEX["fusion"] not in video_only.media_ids  # never fuse a missing modality


@pytest.mark.parametrize(
    "turns, lengths, message",
    [
        (conversation("happy <video>"), {"video": 1}, "in an assistant answer"),
        ([{"role": "user", "content": "<video> <video> twice"}, {"role": "assistant", "content": "x"}], {"video": 1}, "appears twice"),
        (conversation("happy"), {"video": 400}, "over max_length=256"),
    ],
)
def test_bad_conversations(tokenizer, turns, lengths, message):
    proc = EmotionProcessor(tokenizer, per_token, max_length=256)
    with pytest.raises(ValueError, match=message):
        proc.encode(turns, lengths)


def test_prompt_length_is_checked_from_the_text_alone(tokenizer):
    from emoreason.model.processor import PromptTooLong

    proc = EmotionProcessor(tokenizer, per_token, max_length=64)
    proc.check_prompt_length([{"role": "user", "content": "<video> What emotion is shown?"}])  # fits
    # 20 MiB is refused from its byte count: no tokenizer pass over it (that took a minute under a lock).
    huge = [{"role": "user", "content": "she said she was fine. " * (20 * 2**20 // 23)}]
    with pytest.raises(PromptTooLong, match=r"at least \d+ tokens of text \(\d+ bytes\), over max_length=64"):
        proc.check_prompt_length(huge)
    # Short enough in bytes to be tokenized, too long in tokens.
    over = [{"role": "user", "content": "happy sad " * (64 * proc.max_token_bytes // 10)}]
    assert len("".join(t["content"] for t in over).encode()) <= 64 * proc.max_token_bytes
    with pytest.raises(PromptTooLong, match=r"conversation is \d+ tokens, over max_length=64"):
        proc.check_prompt_length(over)
    # The text fits; with 60 video positions it does not, and the final encode says so.
    short = [{"role": "user", "content": "<video> Why?"}]
    proc.check_prompt_length(short)
    with pytest.raises(PromptTooLong, match="tokens with media"):
        proc.encode(short, {"video": 60}, generation_prompt=True)
