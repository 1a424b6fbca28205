"""Leaderboard files: round trips, and every validation failure."""

import subprocess
import sys

import numpy as np
import pytest

from emoreason.eval.submission import SubmissionError, read_submission, validate_submission, write_submission

IDS = ["s1", "s2", "s3"]


def mer2023_rows():
    return [{"name": "s1", "discrete": "happy", "valence": 1.5}, {"name": "s2", "discrete": "sad", "valence": -2.0},
            {"name": "s3", "discrete": "neutral", "valence": 0.0}]


def test_mer2023_csv_round_trip(tmp_path):
    path = write_submission(tmp_path / "mer2023.csv", "mer2023", mer2023_rows(), IDS)
    assert path.read_text().splitlines() == ["name,discrete,valence", "s1,happy,1.5", "s2,sad,-2.0", "s3,neutral,0.0"]
    assert read_submission(path, "mer2023") == mer2023_rows()
    validate_submission(path, "mer2023", IDS)


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_track2_npz_is_string_arrays_readable_with_and_without_pickle(tmp_path, allow_pickle):
    rows = [{"name": "s1", "openset": ["happy", "excited"]}, {"name": "s2", "openset": ["sad"]}]
    path = write_submission(tmp_path / "track2-openset.npz", "mer2025-track2", rows, ["s1", "s2"])
    with np.load(path, allow_pickle=allow_pickle) as data:
        assert data["filenames"].dtype.kind == "U" and data["fileitems"].dtype.kind == "U"
        assert data["filenames"].tolist() == ["s1", "s2"]
        assert data["fileitems"].tolist() == ["[happy, excited]", "[sad]"]
    assert read_submission(path, "mer2025-track2") == rows


def test_official_style_npz_passes_check(tmp_path):
    # As the official extraction step stores them: np.savez_compressed of plain Python lists of str.
    path = tmp_path / "official-openset.npz"
    np.savez_compressed(path, filenames=["s1", "s2", "s3"], fileitems=["['happy', 'very excited']", "[sad]", "[]"])
    validate_submission(path, "mer2025-track2", ["s1", "s2", "s3"])
    assert [r["openset"] for r in read_submission(path, "mer2025-track2")] == [["happy", "very excited"], ["sad"], []]
    bytes_path = tmp_path / "bytes-openset.npz"
    np.savez(bytes_path, filenames=np.array([b"s1"]), fileitems=np.array([b"happy, sad"]))
    assert read_submission(bytes_path, "mer2025-track2") == [{"name": "s1", "openset": ["happy", "sad"]}]


class _WritesMarker:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_a_pickled_npz_is_refused_by_submit_check_and_never_unpickled(tmp_path):
    marker = tmp_path / "marker"
    items = np.empty(1, dtype=object)
    items[0] = _WritesMarker(marker)
    path = tmp_path / "evil-openset.npz"
    np.savez(path, filenames=np.array(["s1"]), fileitems=items)
    result = subprocess.run(
        [sys.executable, "-m", "emoreason.cli", "submit", "--benchmark", "mer2025-track2", "--check", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and "fileitems: an object array" in result.stderr and "refused" in result.stderr
    assert not marker.exists()


def test_track1_and_reason_csvs(tmp_path):
    write_submission(tmp_path / "t1.csv", "mer2025-track1", [{"name": "s1", "discrete": "worried"}], ["s1"])
    path = write_submission(tmp_path / "emer.csv", "emer", [{"name": "s1", "reason": 'She frowns, "quietly", then sighs.'}], ["s1"])
    assert read_submission(path, "emer") == [{"name": "s1", "reason": 'She frowns, "quietly", then sighs.'}]


def test_incomplete_is_refused_unless_forced(tmp_path):
    path = tmp_path / "partial.csv"
    with pytest.raises(SubmissionError, match="incomplete") as caught:
        write_submission(path, "mer2023", mer2023_rows()[:2], IDS)
    assert caught.value.problems == ["id 's3' has no prediction"] and not path.exists()
    write_submission(path, "mer2023", mer2023_rows()[:2], IDS, force=True)
    with pytest.raises(SubmissionError, match="'s3' has no prediction"):
        validate_submission(path, "mer2023", IDS)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda rows: rows + [dict(rows[0])], "id 's1' appears 2 times"),
        (lambda rows: [{**rows[0], "discrete": "joyful"}, *rows[1:]], "id 's1': discrete: expected one of"),
        (lambda rows: [{**rows[0], "valence": float("nan")}, *rows[1:]], "id 's1': valence: expected a finite number"),
        (lambda rows: [{**rows[0], "valence": "high"}, *rows[1:]], "valence: expected a finite number, got 'high'"),
        (lambda rows: [{"name": "s1", "discrete": "happy"}, *rows[1:]], "id 's1': valence: missing"),
        (lambda rows: rows + [{"name": "s9", "discrete": "sad", "valence": 0.0}], "'s9' is not in the benchmark's id list"),
    ],
    ids=["duplicate", "label", "nan", "type", "missing-field", "unexpected-id"],
)
def test_invalid_rows_are_never_written(tmp_path, change, message):
    path = tmp_path / "bad.csv"
    with pytest.raises(SubmissionError, match=message):
        write_submission(path, "mer2023", change(mer2023_rows()), IDS, force=True)
    assert not path.exists()


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    wrong_header = tmp_path / "header.csv"
    wrong_header.write_text("id,label\ns1,happy\n")
    with pytest.raises(SubmissionError, match=r"(?s)header.csv: .*expected \['name', 'discrete'\]"):
        validate_submission(wrong_header, "mer2025-track1")
    short = tmp_path / "short.csv"
    short.write_text("name,discrete,valence\ns1,happy\n")
    with pytest.raises(SubmissionError, match="line 2: expected 3 columns, got 2"):
        validate_submission(short, "mer2023")
    bad_items = tmp_path / "items.npz"
    np.savez(bad_items, filenames=np.array(["s1"]), fileitems=np.array([1.5]))
    with pytest.raises(SubmissionError, match=r"(?s)items.npz: .*fileitems: expected a 1-D array of strings, got dtype float64"):
        validate_submission(bad_items, "mer2025-track2", ["s1"])
    not_npz = tmp_path / "not.npz"
    not_npz.write_bytes(b"garbage")
    with pytest.raises(SubmissionError, match="(?s)not.npz: .*not a readable NPZ file"):
        validate_submission(not_npz, "mer2025-track2")
    with pytest.raises(SubmissionError, match="label \"can't\" contains"):
        write_submission(tmp_path / "q.npz", "mer2025-track2", [{"name": "s1", "openset": ["can't"]}], ["s1"])
    with pytest.raises(ValueError, match="unknown benchmark"):
        validate_submission(short, "mer2030")
