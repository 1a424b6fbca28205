import json

import pytest

from emoreason.schema import Sample, SchemaError, iter_samples, load_samples, parse_sample, write_samples


def write_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_full_sample_round_trips(tmp_path):
    record = {
        "id": "s1",
        "media": {"video": "clips/s1.mp4", "audio": "wav/s1.wav"},
        "subtitle": "hello",
        "targets": {
            "emotion": "happy",
            "open_vocab": ["joyful", "relieved"],
            "valence": 2,
            "arousal": -0.5,
            "clues": {"face": "smile", "audio": "rising pitch", "text": "neutral words"},
            "reasoning": "smile and pitch",
        },
        "conversations": [{"role": "user", "content": "<video> why?"}, {"role": "assistant", "content": "happy"}],
        "features": {"audio": {"path": "features/a.safetensors", "key": "k", "encoder": "hubert", "shape": [4, 32]}},
        "faces": {"frame_times": [0.1, 0.2], "missing": [1]},
        "source": {"dataset": "MER2023"},
    }
    path = write_lines(tmp_path / "a.jsonl", [record])
    [sample] = load_samples(path)
    assert sample.targets.valence == 2.0 and sample.faces.missing == [1]
    write_samples(tmp_path / "b.jsonl", [sample])
    assert load_samples(tmp_path / "b.jsonl")[0] == sample


@pytest.mark.parametrize(
    "record, field, expected",
    [
        ({"id": "x", "targets": {"valence": "high"}}, "targets.valence", "expected a number, got 'high'"),
        ({"id": "x", "targets": {"valence": True}}, "targets.valence", "expected a number"),
        ({"id": 3}, "id", "expected a string"),
        ({"media": {}}, "id", "required field is missing"),
        ({"id": ""}, "id", "at least 1 character"),
        ({"id": "x", "subtitel": "typo"}, "subtitel", "unknown field"),
        ({"id": "x", "media": {"video": "/abs/clip.mp4"}}, "media.video", "relative to the data root"),
        ({"id": "x", "media": {"video": "../up.mp4"}}, "media.video", "without '..'"),
        ({"id": "x", "targets": {"open_vocab": "happy"}}, "targets.open_vocab", "expected a list"),
        ({"id": "x", "targets": {"clues": {"smell": "x"}}}, "targets.clues.smell", ""),
        ({"id": "x", "conversations": [{"role": "bot", "content": "hi"}]}, "conversations.0.role", "expected"),
        ({"id": "x", "features": {"audio": {"path": "p"}}}, "features.audio.key", "required field is missing"),
    ],
)
def test_bad_records_name_file_line_field(tmp_path, record, field, expected):
    path = write_lines(tmp_path / "bad.jsonl", [{"id": "ok"}, record])
    with pytest.raises(SchemaError) as info:
        load_samples(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 2, field)
    assert expected in err.message
    assert str(err).startswith(f"{path}:2: field '{field}'")


def test_not_json_and_not_object(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", ["{not json", "[1, 2]"])
    errors = []
    assert list(iter_samples(path, errors)) == []
    assert [(e.line, e.field) for e in errors] == [(1, "<record>"), (2, "<record>")]
    assert "one JSON object per line" in errors[0].message
    assert "expected a JSON object, got list" in errors[1].message


def test_duplicate_ids_and_lenient_mode_keeps_good_records(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [{"id": "a"}, {"id": "b", "targets": {"valence": "x"}}, {"id": "a"}, {"id": "c"}])
    errors = []
    assert [s.id for s in iter_samples(path, errors)] == ["a", "c"]
    assert [(e.line, e.field) for e in errors] == [(2, "targets.valence"), (3, "id")]
    assert "already on line 1" in errors[1].message


def test_blank_lines_are_skipped_and_missing_file_is_clear(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n')
    assert [s.id for s in load_samples(path)] == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_samples(tmp_path / "nope.jsonl")


def test_to_json_drops_empty_fields():
    assert parse_sample({"id": "a", "media": {"video": "v.mp4"}}).to_json() == {"id": "a", "media": {"video": "v.mp4"}}
    assert Sample(id="b").to_json() == {"id": "b"}
