"""Adapters: small files in each published format become exactly the expected samples; bad rows are located."""

import json

import pytest

from emoreason.data_prep import convert_cli
from emoreason.data_prep.adapters import (
    ADAPTERS,
    read_dfew,
    read_emer,
    read_generic_csv,
    read_mafw,
    read_mer2023,
    read_mer2025_ov,
    read_mer2025_reason,
    read_merr_coarse,
    read_merr_fine,
)
from emoreason.schema import SchemaError, load_samples
from merr_entries import MERR_ANGRY_ENTRY


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def as_json(samples):
    return [s.to_json() for s in samples]


def test_registry_names_every_format():
    assert set(ADAPTERS) == {
        "mer2023", "merr-coarse", "merr-fine", "emer", "mer2025-ov",
        "mer2025-reason", "dfew", "mafw", "generic-csv",
    }  # fmt: skip


# --- MER2023 / MER2024 ---------------------------------------------------------------------------


def test_mer2023_labels_and_valence(tmp_path):
    # Byte-order mark and capitalised label as in Excel-saved copies; an empty valence is no valence.
    path = write(tmp_path, "train_label.csv", "\ufeffname,discrete,valence\nsample_00000001,Happy,1.6\nsample_00000002,worried,\n")
    assert as_json(read_mer2023(path, video_dir="mer/video", ext=".avi")) == [
        {
            "id": "sample_00000001",
            "media": {"video": "mer/video/sample_00000001.avi"},
            "targets": {"emotion": "happy", "valence": 1.6},
            "source": {"dataset": "mer2023", "label": "Happy"},
        },
        {
            "id": "sample_00000002",
            "media": {"video": "mer/video/sample_00000002.avi"},
            "targets": {"emotion": "worried"},
            "source": {"dataset": "mer2023", "label": "worried"},
        },
    ]


def test_mer2023_without_valence_column(tmp_path):
    path = write(tmp_path, "test_label.csv", "name,discrete\ns1,sad\n")
    assert as_json(read_mer2023(path)) == [
        {"id": "s1", "media": {"video": "video/s1.mp4"}, "targets": {"emotion": "sad"}, "source": {"dataset": "mer2023", "label": "sad"}}
    ]


def test_bad_value_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "labels.csv", "name,discrete,valence\ns1,happy,1\ns2,sad,high\n")
    with pytest.raises(SchemaError, match=r"labels\.csv:3: field 'valence': expected a number, got 'high'") as info:
        read_mer2023(path)
    assert (info.value.line, info.value.field) == (3, "valence")


def test_empty_required_cell_is_an_error(tmp_path):
    path = write(tmp_path, "labels.csv", "name,discrete,valence\ns1,,0.5\n")
    with pytest.raises(SchemaError, match=r"labels\.csv:2: field 'discrete': expected a non-empty value"):
        read_mer2023(path)


def test_missing_column_fails_the_whole_file_even_when_lenient(tmp_path):
    path = write(tmp_path, "labels.csv", "name,valence\ns1,0.5\n")
    with pytest.raises(SchemaError, match=r"labels\.csv:1: field 'discrete': missing column"):
        read_mer2023(path, errors=[])


def test_lenient_mode_skips_bad_rows_and_reports_them(tmp_path):
    text = "name,discrete,valence\ns1,happy,1\ns2,sad,high\ns3,angry,-1,extra\ns1,sad,0\ns4,neutral,0\n"
    path = write(tmp_path, "labels.csv", text)
    errors = []
    samples = read_mer2023(path, errors=errors)
    assert [s.id for s in samples] == ["s1", "s4"]
    assert [(e.line, e.field) for e in errors] == [(3, "valence"), (4, "<row>"), (5, "id")]
    assert "expected 3 columns (name, discrete, valence), got 4" in str(errors[1])
    assert "expected a unique id, 's1' already at line 2" in str(errors[2])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*nope.csv"):
        read_mer2023(tmp_path / "nope.csv")


def test_non_utf8_file_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("name,discrete\ns1,开心\n".encode("gbk"))
    with pytest.raises(SchemaError, match=r"labels\.csv: field '<file>': expected UTF-8 text"):
        read_mer2023(path)


def test_video_dir_must_stay_inside_the_data_root(tmp_path):
    path = write(tmp_path, "labels.csv", "name,discrete\ns1,happy\n")
    with pytest.raises(ValueError, match="video_dir must be relative"):
        read_mer2023(path, video_dir="/data/video")
    with pytest.raises(ValueError, match="video_dir must be relative"):
        read_mer2023(path, video_dir="../video")


# --- MERR ----------------------------------------------------------------------------------------

MERR_COARSE = {"sample_00000047": MERR_ANGRY_ENTRY}


def test_merr_coarse(tmp_path):
    path = write(tmp_path, "MERR_coarse_grained.json", json.dumps(MERR_COARSE))
    assert as_json(read_merr_coarse(path)) == [
        {
            "id": "sample_00000047",
            "media": {"video": "video/sample_00000047.mp4"},
            "targets": {
                "emotion": "angry",
                "clues": {"face": "brow lowerer, lid tightener", "audio": "The speaker's tone is sharp and loud."},
                "reasoning": "[visual] brow lowerer [audio] sharp tone",
            },
            "action_units": {"codes": ["AU04", "AU07"], "peak_frame": 12, "peak_codes": ["AU04"]},
            "source": {
                "dataset": "merr-coarse",
                "label": "angry",
                "merr": {
                    "visual_prior_list": ["brow lowerer", "lid tightener"],
                    "audio_prior_list": "The speaker's tone is sharp and loud.",
                },
            },
        }
    ]


def test_merr_fine_takes_subtitle_and_reasoning(tmp_path):
    entry = {
        "AU_list": ["AU12"],
        "visual_prior_list": "lip corner puller",
        "audio_prior_list": ["bright tone", "fast pace"],
        "pseu_emotion": "Happy",
        "text": "We won!",
        "smp_reason_caption": "She smiles and speaks brightly about winning, so she is happy.",
    }
    path = write(tmp_path, "MERR_fine_grained.json", json.dumps({"sample_00000001": entry}))
    assert as_json(read_merr_fine(path, video_dir="clips", ext="avi")) == [
        {
            "id": "sample_00000001",
            "media": {"video": "clips/sample_00000001.avi"},
            "subtitle": "We won!",
            "targets": {
                "emotion": "happy",
                "clues": {"face": "lip corner puller", "audio": "bright tone, fast pace"},
                "reasoning": "She smiles and speaks brightly about winning, so she is happy.",
            },
            "action_units": {"codes": ["AU12"]},
            "source": {
                "dataset": "merr-fine",
                "label": "Happy",
                "merr": {"visual_prior_list": "lip corner puller", "audio_prior_list": ["bright tone", "fast pace"]},
            },
        }
    ]


def test_merr_accepts_the_emotion_field_variant(tmp_path):
    path = write(tmp_path, "merr.json", json.dumps({"s1": {"emotion": "sad", "caption": "c"}}))
    assert read_merr_coarse(path)[0].targets.emotion == "sad"


@pytest.mark.parametrize(
    "entry, field, message",
    [
        ({"pseu_emotion": 3}, "pseu_emotion", "expected a string, got 3"),
        ({"pseu_emotion": "sad", "visual_prior_list": ["smile", 2]}, "visual_prior_list", "expected a list of strings"),
        ({"pseu_emotion": "sad", "audio_prior_list": {"tone": "low"}}, "audio_prior_list", "expected a string or a list of strings"),
        ({"caption": "no label"}, "pseu_emotion", "required field is missing"),
        (["not", "an", "object"], "<entry>", "expected an object, got list"),
    ],
)
def test_merr_wrong_type_names_entry_and_field(tmp_path, entry, field, message):
    path = write(tmp_path, "merr.json", json.dumps({"good": {"pseu_emotion": "happy"}, "bad": entry}))
    with pytest.raises(SchemaError, match=rf"merr\.json: entry 'bad': field '{field}': {message}"):
        read_merr_coarse(path)
    errors = []
    assert [s.id for s in read_merr_coarse(path, errors=errors)] == ["good"]
    assert errors[0].key == "bad"


def test_merr_fine_requires_the_reasoning(tmp_path):
    path = write(tmp_path, "merr.json", json.dumps({"s1": {"pseu_emotion": "happy"}}))
    with pytest.raises(SchemaError, match="entry 's1': field 'smp_reason_caption': required field is missing"):
        read_merr_fine(path)


def test_bad_json_names_the_line(tmp_path):
    path = write(tmp_path, "merr.json", '{"s1": {"pseu_emotion": "happy"},\n "s2": }\n')
    with pytest.raises(SchemaError, match=r"merr\.json:2: field '<json>': invalid JSON: Expecting value"):
        read_merr_coarse(path)


def test_json_duplicate_keys_are_not_silently_dropped(tmp_path):
    path = write(tmp_path, "merr.json", '{"s1": {"pseu_emotion": "happy"}, "s1": {"pseu_emotion": "sad"}}')
    with pytest.raises(SchemaError, match="duplicate key 's1'"):
        read_merr_coarse(path)


def test_merr_top_level_must_be_keyed_by_name(tmp_path):
    path = write(tmp_path, "merr.json", json.dumps([{"pseu_emotion": "happy"}]))
    with pytest.raises(SchemaError, match="expected an object keyed by sample name, got list"):
        read_merr_coarse(path)


# --- EMER ----------------------------------------------------------------------------------------


def test_emer_v1_csv_with_labels_and_subtitles(tmp_path):
    text = 'names,emotions,subtitles,reasons\nsample_00000007,Sad,"I miss her, every day.",Her voice trembles and she looks down.\n'
    path = write(tmp_path, "gt-eng.csv", text)
    assert as_json(read_emer(path)) == [
        {
            "id": "sample_00000007",
            "media": {"video": "video/sample_00000007.mp4"},
            "subtitle": "I miss her, every day.",
            "targets": {"emotion": "sad", "reasoning": "Her voice trembles and she looks down."},
            "source": {"dataset": "emer", "label": "Sad"},
        }
    ]


def test_emer_v2_csv_prefers_english(tmp_path):
    path = write(tmp_path, "final-EMER-reason.csv", "names,chinese,english\ns1,她很开心,She is delighted.\n")
    assert as_json(read_emer(path)) == [
        {"id": "s1", "media": {"video": "video/s1.mp4"}, "targets": {"reasoning": "She is delighted."}, "source": {"dataset": "emer"}}
    ]


def test_emer_name_reason_csv(tmp_path):
    path = write(tmp_path, "emer.csv", "name,reason\ns1,He frowns.\n")
    assert read_emer(path)[0].targets.reasoning == "He frowns."


def test_emer_json_list_and_keyed_forms(tmp_path):
    listed = write(tmp_path, "a.json", json.dumps([{"name": "s1", "reason": "He frowns.", "emotion": "angry"}]))
    keyed = write(tmp_path, "b.json", json.dumps({"s1": {"reason": "He frowns.", "emotion": "angry"}}))
    assert as_json(read_emer(listed)) == as_json(read_emer(keyed)) == [
        {
            "id": "s1",
            "media": {"video": "video/s1.mp4"},
            "targets": {"emotion": "angry", "reasoning": "He frowns."},
            "source": {"dataset": "emer", "label": "angry"},
        }
    ]


def test_emer_json_errors(tmp_path):
    path = write(tmp_path, "emer.json", json.dumps([{"name": "s1", "emotion": "sad"}, {"reason": "no name"}]))
    errors = []
    assert read_emer(path, errors=errors) == []
    assert [str(e) for e in errors] == [
        f"{path}: entry 's1': field 'reasons': required field is missing: expected one of ['reasons', 'reason', 'english', 'chinese']",
        f"{path}: entry '[1]': field 'names': expected a non-empty string naming the sample, got None",
    ]


def test_emer_csv_without_a_reason_column(tmp_path):
    path = write(tmp_path, "emer.csv", "names,emotions\ns1,sad\n")
    with pytest.raises(SchemaError, match=r"field 'reasons': missing column: expected 'reasons' or 'reason' or 'english'"):
        read_emer(path)


# --- MER2025 -------------------------------------------------------------------------------------


def test_mer2025_ov_list_formats(tmp_path):
    text = 'name,openset\ns1,"[\'Happy\', \'relieved\']"\ns2,"[""calm""]"\ns3,"worried, nervous"\n'
    path = write(tmp_path, "track2_train_ovmerd.csv", text)
    assert as_json(read_mer2025_ov(path)) == [
        {
            "id": "s1",
            "media": {"video": "video/s1.mp4"},
            "targets": {"open_vocab": ["happy", "relieved"]},
            "source": {"dataset": "mer2025-ov", "label": "['Happy', 'relieved']"},
        },
        {
            "id": "s2",
            "media": {"video": "video/s2.mp4"},
            "targets": {"open_vocab": ["calm"]},
            "source": {"dataset": "mer2025-ov", "label": '["calm"]'},
        },
        {
            "id": "s3",
            "media": {"video": "video/s3.mp4"},
            "targets": {"open_vocab": ["worried", "nervous"]},
            "source": {"dataset": "mer2025-ov", "label": "worried, nervous"},
        },
    ]


@pytest.mark.parametrize(
    "cell, message",
    [('"[\'happy\', "', "expected a list such as"), ('"[1, 2]"', "expected a list of strings"), ('"[]"', "expected at least one label")],
)
def test_mer2025_ov_bad_lists(tmp_path, cell, message):
    path = write(tmp_path, "ov.csv", f"name,openset\ns1,{cell}\n")
    with pytest.raises(SchemaError, match=rf"ov\.csv:2: field 'openset': {message}"):
        read_mer2025_ov(path)


def test_mer2025_reason(tmp_path):
    path = write(tmp_path, "track3_train_ovmerd.csv", 'name,reason\ns1,"She laughs, then sighs."\n')
    assert as_json(read_mer2025_reason(path)) == [
        {
            "id": "s1",
            "media": {"video": "video/s1.mp4"},
            "targets": {"reasoning": "She laughs, then sighs."},
            "source": {"dataset": "mer2025-reason"},
        }
    ]


# --- DFEW and MAFW -------------------------------------------------------------------------------


def test_dfew_numeric_labels_to_names(tmp_path):
    path = write(tmp_path, "set_1.csv", "video_name,label\n1,3\n10234,7\n")
    assert as_json(read_dfew(path, video_dir="Clip/original")) == [
        {
            "id": "00001",
            "media": {"video": "Clip/original/00001.mp4"},
            "targets": {"emotion": "neutral"},
            "source": {"dataset": "dfew", "label": 3, "video_name": "1"},
        },
        {
            "id": "10234",
            "media": {"video": "Clip/original/10234.mp4"},
            "targets": {"emotion": "fear"},
            "source": {"dataset": "dfew", "label": 7, "video_name": "10234"},
        },
    ]


@pytest.mark.parametrize("label", ["0", "8", "Happy"])
def test_dfew_rejects_labels_outside_1_to_7(tmp_path, label):
    path = write(tmp_path, "set_1.csv", f"video_name,label\n1,{label}\n")
    with pytest.raises(SchemaError, match=rf"set_1\.csv:2: field 'label': expected a label 1\.\.7 \(1 happy, .*got '{label}'"):
        read_dfew(path)


def test_mafw_names_and_indices(tmp_path):
    path = write(tmp_path, "train.txt", "00025.mp4 Anger\n\n00031.mp4 helplessness\n00040 11\n")
    assert as_json(read_mafw(path, video_dir="data/clips")) == [
        {
            "id": "00025",
            "media": {"video": "data/clips/00025.mp4"},
            "targets": {"emotion": "anger"},
            "source": {"dataset": "mafw", "label": "Anger"},
        },
        {
            "id": "00031",
            "media": {"video": "data/clips/00031.mp4"},
            "targets": {"emotion": "helplessness"},
            "source": {"dataset": "mafw", "label": "helplessness"},
        },
        {
            "id": "00040",
            "media": {"video": "data/clips/00040.mp4"},
            "targets": {"emotion": "disappointment"},
            "source": {"dataset": "mafw", "label": "11"},
        },
    ]


def test_mafw_csv_copy_with_header(tmp_path):
    path = write(tmp_path, "train.csv", "video_name,label\n00025.mp4,fear\n")
    assert [(s.id, s.targets.emotion) for s in read_mafw(path)] == [("00025", "fear")]


def test_mafw_bad_lines(tmp_path):
    path = write(tmp_path, "train.txt", "00025.mp4 joy\n00026.mp4\n00027.mp4 fear\n")
    errors = []
    assert [s.id for s in read_mafw(path, errors=errors)] == ["00027"]
    assert [(e.line, e.field) for e in errors] == [(1, "label"), (2, "<line>")]
    assert "expected one of ['anger', 'disgust'" in str(errors[0]) and "got 'joy'" in str(errors[0])


# --- generic CSV ---------------------------------------------------------------------------------

MAPPING = {
    "id": "clip",
    "media.video": "path",
    "targets.emotion": "label",
    "targets.valence": "v",
    "targets.open_vocab": "ov",
    "targets.clues.face": "face",
    "subtitle": "text",
    "source.split": "split",
}


def test_generic_csv_types_values_per_schema(tmp_path):
    text = 'clip,path,label,v,ov,face,text,split\nc1,clips/c1.mp4,happy,0.5,"[""joyful"", ""proud""]",smile,Hi there,train\nc2,clips/c2.mp4,sad,,,,,\n'
    path = write(tmp_path, "clips.csv", text)
    assert as_json(read_generic_csv(path, mapping=MAPPING)) == [
        {
            "id": "c1",
            "media": {"video": "clips/c1.mp4"},
            "subtitle": "Hi there",
            "targets": {"emotion": "happy", "open_vocab": ["joyful", "proud"], "valence": 0.5, "clues": {"face": "smile"}},
            "source": {"dataset": "generic-csv", "split": "train", "label": "happy"},
        },
        {"id": "c2", "media": {"video": "clips/c2.mp4"}, "targets": {"emotion": "sad"}, "source": {"dataset": "generic-csv", "label": "sad"}},
    ]


USER_CSV = "file,Emotion,transcript,valence,split\nc01.mp4,Happy,Yay,2,train\nsub/c02.mp4,SAD,Oh no,-1.5,test\nc03.mp4,Angry,Grr,-3,test\n"
USER_MAPPING = {"media.video": "file", "targets.emotion": "Emotion", "subtitle": "transcript", "targets.valence": "valence", "source.split": "split"}


def test_generic_csv_lowercases_labels_and_keeps_the_original(tmp_path):
    path = write(tmp_path, "c.csv", 'clip,label,ov\nc1,Happy,"Joyful, PROUD"\n')
    [sample] = read_generic_csv(path, mapping={"id": "clip", "targets.emotion": "label", "targets.open_vocab": "ov"})
    assert sample.targets.emotion == "happy" and sample.targets.open_vocab == ["joyful", "proud"]
    assert sample.source["label"] == "Happy"


def test_generic_csv_ids_from_file_names_media_prefix_and_split(tmp_path):
    path = write(tmp_path, "labels.csv", USER_CSV)
    test = read_generic_csv(path, mapping=USER_MAPPING, id_from_path="file", media_prefix="clips", split="test")
    assert [(s.id, s.media.video, s.targets.emotion, s.targets.valence) for s in test] == [
        ("c02", "clips/sub/c02.mp4", "sad", -1.5), ("c03", "clips/c03.mp4", "angry", -3.0),
    ]
    assert [s.id for s in read_generic_csv(path, mapping=USER_MAPPING, id_from_path="file")] == ["c01", "c02", "c03"]
    with pytest.raises(ValueError, match="map the split column as 'source.split'"):
        read_generic_csv(path, mapping={"media.video": "file"}, id_from_path="file", split="test")
    with pytest.raises(ValueError, match="media_prefix must be relative"):
        read_generic_csv(path, mapping=USER_MAPPING, id_from_path="file", media_prefix="../up")
    with pytest.raises(ValueError, match="both give the ids"):
        read_generic_csv(path, mapping={**USER_MAPPING, "id": "file"}, id_from_path="file")


def test_convert_cli_generic_csv_options(tmp_path, capsys):
    path = write(tmp_path, "labels.csv", USER_CSV)
    out = tmp_path / "test.jsonl"
    args = ["generic-csv", "--input", str(path), "--out", str(out), "--mapping", json.dumps(USER_MAPPING)]
    assert convert_cli.main([*args, "--id-from-path", "file", "--media-prefix", "clips", "--split", "test"]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["c02", "c03"]
    with pytest.raises(SystemExit):
        convert_cli.main(["mer2023", "--input", str(path), "--out", str(out), "--split", "test"])
    assert "--split only apply to generic-csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"id": "clip", "targets.mood": "label"}, "unknown schema field 'targets.mood'"),
        ({"media.video": "path"}, "expected an 'id' entry"),
        ({"id": 3}, "field 'id': expected a column name"),
        (["id"], "expected an object of schema field -> column name"),
    ],
)
def test_generic_csv_rejects_bad_mappings(tmp_path, mapping, message):
    path = write(tmp_path, "clips.csv", "clip,path,label\nc1,a.mp4,happy\n")
    with pytest.raises(ValueError, match=message):
        read_generic_csv(path, mapping=mapping)


def test_generic_csv_row_errors(tmp_path):
    text = "clip,path,v\nc1,/abs/c1.mp4,0\nc2,c2.mp4,loud\n,c3.mp4,1\nc4,c4.mp4,1\n"
    path = write(tmp_path, "clips.csv", text)
    errors = []
    samples = read_generic_csv(path, mapping={"id": "clip", "media.video": "path", "targets.valence": "v"}, errors=errors)
    assert [s.id for s in samples] == ["c4"]
    assert [(e.line, e.field) for e in errors] == [(2, "media.video"), (3, "targets.valence"), (4, "id")]
    assert "expected a path relative to the data root" in str(errors[0])


def test_generic_csv_missing_mapped_column(tmp_path):
    path = write(tmp_path, "clips.csv", "clip,path\nc1,a.mp4\n")
    with pytest.raises(SchemaError, match=r"clips\.csv:1: field 'label': missing column"):
        read_generic_csv(path, mapping={"id": "clip", "targets.emotion": "label"})


# --- convert CLI ---------------------------------------------------------------------------------


def test_convert_cli_writes_schema_jsonl(tmp_path, capsys):
    src = write(tmp_path, "labels.csv", "name,discrete,valence\ns1,happy,1\ns2,sad,-1\n")
    out = tmp_path / "out" / "samples.jsonl"
    assert convert_cli.main(["mer2023", str(src), "--out", str(out), "--video-dir", "vids", "--ext", "avi"]) == 0
    assert [s.media.video for s in load_samples(out)] == ["vids/s1.avi", "vids/s2.avi"]
    assert "converted 2 samples" in capsys.readouterr().out


def test_convert_cli_strict_stops_and_writes_nothing(tmp_path, capsys):
    src = write(tmp_path, "labels.csv", "name,discrete,valence\ns1,happy,1\ns2,sad,high\n")
    out = tmp_path / "samples.jsonl"
    assert convert_cli.main(["mer2023", str(src), "--out", str(out)]) == 1
    assert not out.exists()
    assert "labels.csv:3: field 'valence'" in capsys.readouterr().err


def test_convert_cli_lenient_lists_skipped_rows(tmp_path, capsys):
    src = write(tmp_path, "labels.csv", "name,discrete,valence\ns1,happy,1\ns2,sad,high\n")
    out = tmp_path / "samples.jsonl"
    assert convert_cli.main(["mer2023", str(src), "--out", str(out), "--lenient"]) == 0
    assert [s.id for s in load_samples(out)] == ["s1"]
    captured = capsys.readouterr()
    assert "converted 1 samples" in captured.out and "skipped 1 bad row" in captured.out
    assert "skipped: " in captured.err and "labels.csv:3: field 'valence'" in captured.err


def test_convert_cli_generic_csv_mapping_inline_or_file(tmp_path):
    src = write(tmp_path, "clips.csv", "clip,path,label\nc1,a.mp4,happy\n")
    mapping = {"id": "clip", "media.video": "path", "targets.emotion": "label"}
    mapping_file = write(tmp_path, "mapping.json", json.dumps(mapping))
    for value in (json.dumps(mapping), str(mapping_file)):
        out = tmp_path / "samples.jsonl"
        assert convert_cli.main(["generic-csv", str(src), "--out", str(out), "--mapping", value]) == 0
        assert load_samples(out)[0].targets.emotion == "happy"


@pytest.mark.parametrize(
    "args",
    [
        ["generic-csv", "x.csv", "--out", "o.jsonl"],
        ["generic-csv", "x.csv", "--out", "o.jsonl", "--mapping", "{}", "--video-dir", "v"],
        ["mer2023", "x.csv", "--out", "o.jsonl", "--mapping", "{}"],
        ["nonsense", "x.csv", "--out", "o.jsonl"],
    ],
)
def test_convert_cli_usage_errors(args):
    with pytest.raises(SystemExit) as info:
        convert_cli.main(args)
    assert info.value.code == 2
