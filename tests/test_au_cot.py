"""AU-grounded chain of thought: built only from annotations, parsed back into its sections."""

from __future__ import annotations

import pytest

from emoreason.config import ConfigError
from emoreason.data_prep.instructions.au_cot import (
    AU_COT_SECTIONS,
    au_cot_answer,
    build_au_cot_conversations,
    load_au_cot_prompts,
    parse_au_cot,
)
from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.schema import parse_sample


def sample(**fields) -> object:
    record = {
        "id": "s1",
        "media": {"video": "v/s1.mp4"},
        "subtitle": "I can't believe you did that.",
        "action_units": {"codes": ["AU04", "AU07", "AU23"], "intensities": {"AU04": 2.5, "AU23": 1.0}},
        "targets": {"emotion": "angry", "reasoning": "Lowered brows, tight lids and pressed lips show anger.\nThe words agree."},
    }
    return parse_sample(record | fields)


def test_answer_has_the_three_sections_with_au_names_and_intensities():
    answer = au_cot_answer(sample(), ["face", "audio"])
    lines = answer.splitlines()
    assert lines[:4] == ["Action units:", "- AU04 brow lowerer (intensity 2.5)", "- AU07 lid tightener",
                         "- AU23 lip tightener (intensity 1)"]
    headings = [line for line in lines if line.startswith(AU_COT_SECTIONS)]
    assert [h.split(":")[0] + ":" for h in headings] == list(AU_COT_SECTIONS)
    assert lines[-1] == "Conclusion: angry"


def test_answer_parses_back_into_its_sections():
    s = sample()
    parsed = parse_au_cot(au_cot_answer(s, ["face"]))
    assert parsed.action_units == (("AU04", 2.5), ("AU07", None), ("AU23", 1.0))
    assert parsed.interpretation == s.targets.reasoning
    assert parsed.conclusion == "angry"


def test_conversations_are_reproducible_and_record_provenance():
    first = build_au_cot_conversations([sample()], modalities=["face", "audio"], seed=3)
    again = build_au_cot_conversations([sample()], modalities=["face", "audio"], seed=3)
    assert first == again
    user, assistant = first[0].conversations
    assert user.content.startswith("<face> <audio>\n") and "I can't believe you did that." in user.content
    assert user.content.splitlines()[-1] in load_au_cot_prompts().prompts
    assert parse_au_cot(assistant.content).conclusion == "angry"
    line = 'The subtitle reads: "I can\'t believe you did that."'  # what a recipe's {subtitle} slot replaces
    assert first[0].source["instruction"] == {"task": "au-cot", "seed": 3, "prompts_version": 1, "subtitle_line": line}
    assert line in user.content.splitlines()


@pytest.mark.parametrize(("fields", "modalities", "field"), [
    ({"action_units": None}, ["face"], "action_units.codes"),
    ({"action_units": {"codes": []}}, ["face"], "action_units.codes"),
    ({"targets": {"emotion": "angry"}}, ["face"], "targets.reasoning"),
    ({"targets": {"reasoning": "r"}}, ["face"], "targets.emotion"),
    ({}, ["audio"], "action_units"),  # no visual placeholder: the model could not see the AUs
    ({"media": {"audio": "a.wav"}}, ["face"], "media"),
])
def test_missing_annotations_name_the_field(fields, modalities, field):
    record = {k: v for k, v in (sample().to_json() | fields).items() if v is not None}
    bad = parse_sample(record)
    with pytest.raises(InstructionError, match=f"field '{field}'"):
        build_au_cot_conversations([bad], modalities=modalities)
    errors: list[InstructionError] = []
    built = build_au_cot_conversations([bad, sample(id="ok")], modalities=modalities, errors=errors)
    assert [e.field for e in errors][:1] == [field] and "s1" not in [s.id for s in built]


@pytest.mark.parametrize(("text", "message"), [
    ("Interpretation: x\nConclusion: y", "'Action units:'"),
    ("Action units:\n- AU04 brow lowerer\nConclusion: y\nInterpretation: x", "order"),
    ("Action units:\n- smile\nInterpretation: x\nConclusion: y", "action unit lines"),
    ("Action units:\n- AU99 nothing\nInterpretation: x\nConclusion: y", "action unit lines"),
    ("Action units:\n\nInterpretation: x\nConclusion: y", "lists no action unit"),
    ("Action units:\n- AU04 brow lowerer\nInterpretation: x\nConclusion:", "empty"),
])
def test_parse_rejects_malformed_answers(text, message):
    with pytest.raises(ValueError, match=message):
        parse_au_cot(text)


def test_prompt_file_errors(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nprompts: []\n")
    with pytest.raises(ConfigError, match="key 'prompts'"):
        load_au_cot_prompts(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_au_cot_prompts(tmp_path / "missing.yaml")
