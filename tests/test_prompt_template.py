"""A recipe's prompt template (model.prompt): slots map onto our media positions, the recipe's literal tags stay
text, the text slots fill from the sample, a template lacking a modality's slot is refused by file and key before
any weights load, and no template is today's behaviour."""

from __future__ import annotations

import pytest

from emoreason.config import ConfigError
from emoreason.constants import MEDIA_INDEX
from emoreason.model.processor import EmotionProcessor
from emoreason.model.prompt_template import PromptTemplate

EMOTION_LLAMA = "<video>{frame}</video> <feature>{face}{video}{audio}{frame_cls}</feature> {subtitle}[{task}] {instruction}"
TURNS = [{"role": "user", "content": "<audio> Which emotion?"}, {"role": "assistant", "content": "happy"}]
LENGTHS = {"frame": 8, "frame_cls": 1, "face": 1, "video": 1, "audio": 1}


@pytest.fixture(scope="module")
def tokenizer(tiny_llm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llm_dir)


def processor(tokenizer, prompt=None):
    # frame: a concat of 4 (8 features -> 2 positions); the others one position a feature.
    return EmotionProcessor(tokenizer, lambda m, n: n // 4 if m == "frame" else n, max_length=512, prompt=prompt)


def template(**kwargs) -> PromptTemplate:
    defaults = dict(template=EMOTION_LLAMA, subtitle="The person in video says: {subtitle}. ",
                    tasks={"recognition": "emotion", "cot": "reason_v2"}, default_task="emotion")
    return PromptTemplate(**(defaults | kwargs))


def runs(media_ids):
    names = {i: m for m, i in MEDIA_INDEX.items()}
    out, previous = [], 0
    for tag in media_ids:
        if tag and tag == previous:
            out[-1][1] += 1
        elif tag:
            out.append([names[tag], 1])
        previous = tag
    return [tuple(r) for r in out]


def text_of(tokenizer, encoded):
    return tokenizer.decode([t for t, m in zip(encoded.input_ids, encoded.media_ids) if m == 0])


def test_slots_hold_our_positions_in_template_order_and_literal_tags_stay_text(tokenizer):
    encoded = processor(tokenizer, template()).encode(TURNS, LENGTHS, fields={"subtitle": " I did it! ", "task": "cot"})
    assert runs(encoded.media_ids) == [("frame", 2), ("face", 1), ("video", 1), ("audio", 1), ("frame_cls", 1)]
    text = text_of(tokenizer, encoded)
    # The recipe's <video> is text; the conversation's own <audio> placeholder is dropped (the template places media).
    assert "<video></video> <feature></feature> The person in video says: I did it!. [reason_v2] Which emotion?" in text
    assert "<audio>" not in text


def test_text_slots_without_a_subtitle_or_task(tokenizer):
    encoded = processor(tokenizer, template()).encode(TURNS[:1], {"frame": 4}, generation_prompt=True)
    text = text_of(tokenizer, encoded)
    assert "<video></video> <feature></feature> [emotion] Which emotion?" in text and "says" not in text
    assert runs(encoded.media_ids) == [("frame", 1)]


def test_no_template_is_todays_layout(tokenizer):
    plain = processor(tokenizer).encode(TURNS, LENGTHS)
    explicit = EmotionProcessor(tokenizer, lambda m, n: n // 4 if m == "frame" else n, max_length=512).encode(TURNS, LENGTHS)
    assert plain == explicit
    # Our order: the written <audio> where it stands, the unwritten ones before the first user turn in table order.
    assert runs(plain.media_ids) == [("face", 1), ("video", 1), ("frame", 2), ("frame_cls", 1), ("audio", 1)]


def test_chat_template_replaces_the_tokenizers_and_labels_only_the_answer(tiny_llm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llm_dir)
    chat = ("{% for m in messages %}{% if m['role'] == 'user' %}###Human: {{ m['content'] }} {% else %}"
            "###Assistant: {{ m['content'] }}###{% endif %}{% endfor %}{% if add_generation_prompt %}###Assistant: {% endif %}")
    encoded = processor(tok, template(chat_template=chat)).encode(TURNS, {"audio": 1})
    assert text_of(tok, encoded).startswith("###Human: <video></video>")
    answer = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != -100]
    assert tok.decode(answer) == "happy###"


@pytest.mark.parametrize("kwargs,key,expected", [
    ({"template": "{frame} {instruction} {bogus}"}, "template", "{bogus}"),
    ({"template": "{frame} {frame} {instruction}"}, "template", "each slot once"),
    ({"template": "<video>{frame}</video>"}, "template", "{instruction}"),
    ({"template": "{frame {instruction}"}, "template", "literal braces"),
    ({"subtitle": "no slot here"}, "subtitle", "exactly one {subtitle}"),
    ({"default_task": None}, "default_task", "{task} slot"),
])
def test_bad_templates_are_refused_by_key(kwargs, key, expected):
    with pytest.raises(ConfigError, match=rf"key '{key}'.*{__import__('re').escape(expected)}"):
        template(**kwargs)


def test_a_template_lacking_a_modalitys_slot_names_file_key_and_slot_before_any_weights_load(tmp_path):
    from emoreason.train.config import load_train_config

    path = tmp_path / "recipe.yaml"
    path.write_text(f"""stage: instruct
model:
  llm: /nonexistent/llm
  encoders:
    frame: {{model: /nonexistent/clip, pooling: patches}}
    audio: {{model: /nonexistent/hubert}}
  projectors:
    frame: {{kind: token_concat, concat: 4}}
    audio: {{kind: linear}}
  prompt: {{template: "<video>{{frame}}</video> {{instruction}}"}}
data: {{train: {tmp_path / 'train.jsonl'}}}
optim: {{output_dir: {tmp_path / 'out'}}}
""")
    # The checkpoints do not exist: the template error comes first, from the config alone.
    with pytest.raises(ConfigError, match=rf"{path}: key 'model.prompt.template': expected a slot for every modality .*no {{audio}}"):
        load_train_config(str(path))


def test_prefusion_needs_a_fusion_slot():
    from emoreason.encoders.config import EncoderConfig
    from emoreason.model.config import ModelConfig
    from emoreason.model.prefusion import PrefusionConfig
    from emoreason.model.projectors import ProjectorConfig

    with pytest.raises(ConfigError, match=r"key 'prompt.template'.*no \{fusion\}"):
        ModelConfig(llm="x", encoders={"audio": EncoderConfig("a"), "face": EncoderConfig("f")},
                    projectors={"audio": ProjectorConfig(), "face": ProjectorConfig()},
                    prefusion=PrefusionConfig(enabled=True, modalities=["audio", "face"]),
                    prompt=PromptTemplate("{audio} {face} {instruction}"))


def test_infer_requests_carry_the_samples_subtitle_and_task(tmp_path):
    from emoreason.schema import Sample
    from emoreason.serving.infer import sample_request

    sample = Sample(id="a", subtitle="I did it!", source={"instruction": {"task": "cot"}},
                    conversations=[{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "happy"}])
    request = sample_request(sample, ["happy"], ["audio"], tmp_path, max_tokens=4)
    assert request.prompt_fields == {"subtitle": "I did it!", "task": "cot", "subtitle_line": None}
    assert request.messages == [{"role": "user", "content": "Why?"}]


def test_generation_prompts_carry_the_text_fields(tokenizer):
    """Held-out scoring during training builds its prompts with the sample's fields, as the training batches do."""
    import torch

    from emoreason.model.generation import collate_prompts

    proc = processor(tokenizer, template())
    batch = collate_prompts(proc, [(TURNS[:1], {"frame": torch.zeros(4, 3)}, {"subtitle": "Hi", "task": "cot"}),
                                   (TURNS[:1], {"frame": torch.zeros(8, 3)})])
    first, second = (tokenizer.decode([t for t, m in zip(ids, media) if m == 0 and t != proc.pad_id])
                     for ids, media in zip(batch["input_ids"].tolist(), batch["media_ids"].tolist()))
    assert "says: Hi. [reason_v2]" in first and "says" not in second and "[emotion]" in second


def test_a_short_subtitle_inside_the_question_still_fills_the_slot():
    """Only a quoted subtitle counts as shown: "no" in "Answer yes or no." is the question's own word."""
    slot = template(template="{instruction} {subtitle}")
    question = "Is the speaker happy? Answer yes or no."
    assert slot.place_subtitle(question, {"subtitle": "no"}) == (question, "The person in video says: no. ")
    quoted = 'She says "no". Is she happy?'
    assert slot.place_subtitle(quoted, {"subtitle": "no"}) == (quoted, "")
