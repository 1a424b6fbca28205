"""Append-only JSONL: torn tails cut, garbled lines named by file and line, and dropped with the good lines kept."""

import pytest

from emoreason.jsonl import JsonlAppender, JsonlError, drop_bad_lines, read_complete_records


def test_bad_lines_are_named_then_dropped_keeping_the_rest(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b\\u001c\\r"}\n{"id": "c", tru\n\xff\xfe\n[1]\n{"x": 1}\n\n{"id": "d"}\n{"id": "e')
    with pytest.raises(JsonlError, match=r"out.jsonl line 3: not valid JSON"):
        read_complete_records(path)

    problems = drop_bad_lines(path, required=("id",))
    assert [p.split(": ", 1)[0].rsplit(" ", 1)[-1] for p in problems] == ["3", "4", "5", "6"]
    assert "not UTF-8" in problems[1] and "got list" in problems[2] and "without 'id'" in problems[3]
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b\\u001c\\r"}\n\n{"id": "d"}\n{"id": "e'  # torn tail left for the appender
    assert [r["id"] for r in read_complete_records(path, required=("id",))] == ["a", "b\x1c\r", "d"]
    assert drop_bad_lines(path) == []  # nothing more to drop; the file is not rewritten

    with JsonlAppender(path) as out:
        out.write({"id": "e"})
    assert [r["id"] for r in read_complete_records(path)] == ["a", "b\x1c\r", "d", "e"]
