"""Instruction builders: seeded template choice, placeholders per modality, answers per task, skipped samples."""

from importlib import resources

import pytest
import yaml

from emoreason.config import ConfigError
from emoreason.constants import PLACEHOLDER_TOKENS
from emoreason.data_prep import instruct_cli
from emoreason.data_prep.instructions import (
    COT_SECTIONS,
    LABELLED_TASKS,
    TASKS,
    InstructionError,
    build_conversations,
    load_templates,
)
from emoreason.data_prep.instructions.templates import parse_templates
from emoreason.schema import load_samples, parse_sample, write_samples

LABELS = ["happy", "sad", "angry"]


def make(sample_id="s1", **targets):
    record = {"id": sample_id, "media": {"video": f"video/{sample_id}.mp4"}, "source": {"dataset": "test"}}
    if "subtitle" in targets:
        record["subtitle"] = targets.pop("subtitle")
    if targets:
        record["targets"] = targets
    return parse_sample(record)


def full(sample_id="s1"):
    """A sample with everything any task needs (MERR-fine style)."""
    return make(
        sample_id,
        subtitle="We won the final!",
        emotion="happy",
        valence=2.5,
        open_vocab=["joyful", "proud"],
        clues={"audio": "bright, fast speech", "face": "lip corners pulled up", "text": "celebratory words"},
        reasoning="The smile, bright voice and words about winning all point to joy.",
    )


def user(sample):
    return sample.conversations[0].content


def answer(sample):
    return sample.conversations[1].content


def _packaged_yaml():
    return yaml.safe_load((resources.files("emoreason.data_prep.instructions") / "templates.yaml").read_text())


def build(samples, task, modalities=("video", "audio"), **kwargs):
    if task in LABELLED_TASKS:
        kwargs.setdefault("labels", LABELS)
    return build_conversations(samples, task, modalities=list(modalities), **kwargs)


# --- seeds and templates -------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_conversations_in_any_order(task):
    samples = [full(f"s{i}") for i in range(20)]
    forward = {s.id: s.conversations for s in build(samples, task, seed=7)}
    backward = {s.id: s.conversations for s in build(samples[::-1], task, seed=7)}
    assert forward == backward


def test_seeds_change_template_choices_within_the_pool():
    samples = [full(f"s{i}") for i in range(40)]
    pool = load_templates().tasks["open-vocab"]
    by_seed = {seed: [user(s).splitlines()[-1] for s in build(samples, "open-vocab", seed=seed)] for seed in (0, 1)}
    assert by_seed[0] != by_seed[1]
    for prompts in by_seed.values():
        assert set(prompts) <= set(pool)
        assert len(set(prompts)) > 1, "every sample got the same template: the per-sample RNG is not varying"


def test_every_template_of_a_pool_gets_drawn():
    samples = [full(f"s{i}") for i in range(300)]
    pool = load_templates().tasks["cot"]
    assert {user(s).splitlines()[-1] for s in build(samples, "cot")} == set(pool)


def test_provenance_records_task_seed_template_version_and_subtitle_line():
    [sample] = build([full()], "cot", seed=3)
    line = 'The subtitle reads: "We won the final!"'  # what a recipe's {subtitle} slot takes out again (docs/recipes.md)
    assert sample.source == {"dataset": "test", "instruction": {"task": "cot", "seed": 3, "templates_version": 1, "subtitle_line": line}}
    assert line in user(sample).splitlines()
    [untitled] = build([full().model_copy(update={"subtitle": None})], "cot", seed=3)
    assert "subtitle_line" not in untitled.source["instruction"]


def test_packaged_templates_are_versioned_and_valid():
    templates = load_templates()
    assert templates.version >= 1 and set(templates.tasks) == set(TASKS)
    assert all(len(pool) >= 4 for pool in templates.tasks.values())


def test_the_prompt_infer_asks_is_the_first_recognition_template():
    from emoreason.labels import RECOGNITION_PROMPT

    pool = load_templates().tasks["recognition"]
    assert pool[0] == RECOGNITION_PROMPT and pool.count(RECOGNITION_PROMPT) == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("version"), "key 'version': expected an integer >= 1"),
        (lambda d: d["tasks"]["recognition"].append("Which emotion?"), r"tasks\.recognition\[7\]': expected \{labels\}"),
        (lambda d: d["tasks"]["cot"].append("Use {labels}"), r"tasks\.cot\[6\]': expected no placeholders"),
        (lambda d: d["tasks"].pop("cot"), "key 'tasks': expected a pool for each of"),
        (lambda d: d.update(subtitle="Subtitle: {text}"), r"key 'subtitle': expected \{subtitle\}"),
        (lambda d: d["tasks"].update(cot=[]), r"key 'tasks\.cot': expected a non-empty list"),
    ],
)
def test_template_file_errors_name_the_key(tmp_path, change, message):
    data = _packaged_yaml()
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_templates(data)
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"{path}: "):
        load_templates(path)


# --- the user turn -------------------------------------------------------------------------------


@pytest.mark.parametrize("modalities", [["video"], ["audio", "face"], ["frame", "video", "audio"], []])
def test_placeholders_only_for_the_given_modalities(modalities):
    [sample] = build([full()], "recognition", modalities=modalities)
    first_line = user(sample).splitlines()[0]
    expected = " ".join(PLACEHOLDER_TOKENS[m] for m in modalities)
    if modalities:
        assert first_line == expected
    for modality, token in PLACEHOLDER_TOKENS.items():
        assert user(sample).count(token) == (modality in modalities)


def test_unknown_or_repeated_modality_is_rejected():
    with pytest.raises(ValueError, match="expected names among"):
        build([full()], "cot", modalities=["smell"])
    with pytest.raises(ValueError, match="expected each modality once"):
        build([full()], "cot", modalities=["video", "video"])


def test_subtitle_line_only_when_present():
    with_subtitle, without = build([full("a"), make("b", emotion="sad")], "recognition")
    assert user(with_subtitle).splitlines()[1] == 'The subtitle reads: "We won the final!"'
    assert "subtitle" not in user(without).lower()
    assert len(user(without).splitlines()) == 2


def test_a_modality_without_its_media_is_reported():
    sample = parse_sample({"id": "a1", "media": {"audio": "a1.wav"}, "targets": {"emotion": "sad"}})
    errors = []
    assert build([sample], "recognition", modalities=["video"], errors=errors) == []
    assert str(errors[0]) == "sample 'a1': field 'media': modality 'video' needs media.video or media.image, the sample has neither"
    assert len(build([sample], "recognition", modalities=["audio"])) == 1


# --- answers per task ----------------------------------------------------------------------------


def test_recognition_lists_the_candidates_and_answers_the_label():
    [sample] = build([make(emotion="sad")], "recognition", seed=0)
    assert "happy, sad, angry" in user(sample).splitlines()[-1]
    assert answer(sample) == "sad"
    assert [t.role for t in sample.conversations] == ["user", "assistant"]


def test_recognition_needs_labels_and_a_label_among_them():
    with pytest.raises(ValueError, match="needs the candidate labels"):
        build_conversations([full()], "recognition", modalities=["video"])
    with pytest.raises(InstructionError, match=r"sample 's1': field 'targets.emotion': expected one of the candidate labels"):
        build([make(emotion="worried")], "recognition")


def test_open_vocab_answer_is_comma_separated():
    [sample] = build([make(open_vocab=["worried", "nervous", "tense"])], "open-vocab")
    assert answer(sample) == "worried, nervous, tense"


def test_explanation_gives_clues_then_reasoning_then_label():
    [sample] = build([full()], "explanation", modalities=["video", "audio"])
    assert answer(sample) == (
        "Clues:\n"
        "- Audio: bright, fast speech\n"
        "- Face: lip corners pulled up\n"
        "- Text: celebratory words\n"
        "Reasoning: The smile, bright voice and words about winning all point to joy.\n"
        "Emotion: happy"
    )


def test_explanation_without_clues_or_label_keeps_the_reasoning():
    [sample] = build([make(reasoning="He sighs and looks away.")], "explanation")
    assert answer(sample) == "Reasoning: He sighs and looks away."


def test_clues_the_prompt_cannot_show_are_left_out():
    [video_only] = build([full()], "explanation", modalities=["video"])
    assert "Audio:" not in answer(video_only) and "Face:" in answer(video_only)
    [audio_only] = build([full()], "explanation", modalities=["audio"])
    assert "Face:" not in answer(audio_only) and "Audio:" in answer(audio_only)


def test_cot_has_three_delimited_sections_ending_with_the_label():
    [sample] = build([full()], "cot", modalities=["face", "audio"])
    lines = answer(sample).splitlines()
    starts = [next(i for i, line in enumerate(lines) if line.startswith(h)) for h in COT_SECTIONS]
    assert starts == sorted(starts) and lines[0] == "Observations:"
    assert "- Face: lip corners pulled up" in lines[starts[0] : starts[1]]
    assert lines[starts[1]] == "Interpretation: The smile, bright voice and words about winning all point to joy."
    assert lines[starts[2]] == "Conclusion: happy"


def test_cot_observes_the_subtitle_when_no_clue_is_annotated():
    sample = make(subtitle="Leave me alone.", open_vocab=["annoyed", "tired"], reasoning="Curt words suggest irritation.")
    [built] = build([sample], "cot")
    assert answer(built) == (
        'Observations:\n- Subtitle: "Leave me alone."\n\n'
        "Interpretation: Curt words suggest irritation.\n\n"
        "Conclusion: annoyed, tired"
    )


@pytest.mark.parametrize(
    "task, sample, field",
    [
        ("recognition", make(reasoning="r"), "targets.emotion"),
        ("open-vocab", make(emotion="sad"), "targets.open_vocab"),
        ("explanation", make(emotion="sad"), "targets.reasoning"),
        ("cot", make(reasoning="r", clues={"face": "frown"}), "targets.emotion"),
        ("cot", make(emotion="sad", clues={"face": "frown"}), "targets.reasoning"),
        ("cot", make(emotion="sad", reasoning="r", clues={"audio": "sobbing"}), "targets.clues"),
    ],
)
def test_samples_missing_what_a_task_needs_are_reported_and_skipped(task, sample, field):
    errors = []
    built = build([sample, full("ok")], task, modalities=["video"], errors=errors)
    assert [s.id for s in built] == ["ok"]
    assert [(e.sample_id, e.field) for e in errors] == [("s1", field)]
    with pytest.raises(InstructionError, match=rf"sample 's1': field '{field}'"):
        build([sample], task, modalities=["video"])


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="task: expected one of"):
        build_conversations([full()], "summarise", modalities=["video"])


# --- instruct CLI --------------------------------------------------------------------------------


def test_instruct_cli_round_trip(tmp_path, capsys):
    src, out = tmp_path / "samples.jsonl", tmp_path / "out" / "cot.jsonl"
    write_samples(src, [full("a"), make("b", emotion="sad")])
    argv = ["--task", "cot", str(src), "--out", str(out), "--modalities", "video,audio", "--seed", "5"]
    assert instruct_cli.main(argv) == 0
    [sample] = load_samples(out)
    assert sample.id == "a" and user(sample).startswith("<video> <audio>\n")
    assert answer(sample).endswith("Conclusion: happy")
    assert sample.conversations == build([full("a")], "cot", seed=5)[0].conversations
    captured = capsys.readouterr()
    assert "built 1 cot conversations" in captured.out and "skipped 1" in captured.out
    assert "skipped: sample 'b': field 'targets.reasoning'" in captured.err


def test_instruct_cli_recognition_labels(tmp_path, capsys):
    src, out = tmp_path / "samples.jsonl", tmp_path / "rec.jsonl"
    write_samples(src, [make("a", emotion="sad"), make("b", emotion="happy")])
    assert instruct_cli.main(["--task", "recognition", str(src), "--out", str(out), "--modalities", ""]) == 0
    assert "labels (from" in capsys.readouterr().out
    first = user(load_samples(out)[0])
    assert "happy, sad" in first and "<" not in first
    assert instruct_cli.main(["--task", "recognition", str(src), "--out", str(out), "--labels", "sad,happy,angry"]) == 0
    assert "sad, happy, angry" in user(load_samples(out)[0])


def test_instruct_cli_fails_when_nothing_can_be_built(tmp_path, capsys):
    src, out = tmp_path / "samples.jsonl", tmp_path / "ov.jsonl"
    write_samples(src, [make("a", emotion="sad")])
    assert instruct_cli.main(["--task", "open-vocab", str(src), "--out", str(out)]) == 1
    assert not out.exists()
    assert "none of the 1 samples" in capsys.readouterr().err


def test_instruct_cli_reports_bad_input_and_bad_modalities(tmp_path, capsys):
    src = tmp_path / "samples.jsonl"
    src.write_text('{"id": "a", "targets": {"valence": "high"}}\n')
    assert instruct_cli.main(["--task", "cot", str(src), "--out", str(tmp_path / "o.jsonl")]) == 1
    assert "samples.jsonl:1: field 'targets.valence'" in capsys.readouterr().err
    write_samples(src, [full()])
    assert instruct_cli.main(["--task", "cot", str(src), "--out", str(tmp_path / "o.jsonl"), "--modalities", "smell"]) == 1
    assert "expected names among" in capsys.readouterr().err


def test_instruct_cli_custom_templates(tmp_path):
    data = _packaged_yaml()
    data["version"] = 2
    data["tasks"]["cot"] = ["Reason it out."]
    templates, src, out = tmp_path / "t.yaml", tmp_path / "samples.jsonl", tmp_path / "cot.jsonl"
    templates.write_text(yaml.safe_dump(data))
    write_samples(src, [full()])
    assert instruct_cli.main(["--task", "cot", str(src), "--out", str(out), "--templates", str(templates)]) == 0
    [sample] = load_samples(out)
    assert user(sample).endswith("\nReason it out.")
    assert sample.source["instruction"]["templates_version"] == 2


def test_recognition_valence_answers_label_and_valence_that_infer_parses_back():
    from emoreason.labels import extract_label, extract_valence

    [sample] = build([make(emotion="sad", valence=-1.75)], "recognition-valence", seed=0)
    answer = sample.conversations[1].content
    assert answer == "sad; valence -1.75"
    assert "happy, sad, angry" in user(sample)
    assert extract_label(answer, LABELS) == "sad" and extract_valence(answer) == -1.75
    with pytest.raises(InstructionError, match="targets.valence"):
        build([make(emotion="sad")], "recognition-valence")


@pytest.mark.parametrize("text, value", [
    ("happy; valence 2.5", 2.5), ("Valence: -1", -1.0), ("valence=+.5, so happy", 0.5),
    ("happy", None), ("valence 1 or valence 2", None), ("valence 3, I said valence 3.0", 3.0),
])
def test_extract_valence(text, value):
    from emoreason.labels import extract_valence

    assert extract_valence(text) == value
