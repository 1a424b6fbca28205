"""The official emotion-wheel folder of MER2025 track 2 / MER-UniBench, read as the official code reads it.

A folder holds `format.csv` (columns `name`, `format`: a word and its word forms), `synonym.xlsx`
(column pairs `word_runK`, `synonym_runK`: a wheel word and its synonyms, one pair per LLM run) and
`wheelK.xlsx` (columns `level1`, `level2`, `level3`; an empty cell repeats the one above, as merged
cells do). Source: MERTools, MER2025/MER2025_Track23/my_affectgpt/evaluation/wheel.py
(`read_format2raws`, `read_candidate_synonym_merge`, `read_wheel_to_map`, `func_get_wheel_cluster`,
`func_backward_case3`). A word maps to a wheel class by:

1. word form -> every `name` of format.csv listing it (and a name maps to itself);
2. each such name -> every wheel word it is a synonym of (a wheel word maps to itself);
3. of all those wheel words, sorted, the first the wheel knows -> its level-1 class, or its level-2
   class (a level-1 word maps to its alphabetically first level-2 child);
4. a word with no mapping is dropped ("").

Spreadsheets are read with openpyxl; nothing of the official files ships with emoreason.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

from emoreason.eval.label_lists import parse_label_list
from emoreason.eval.taxonomy import TaxonomyError

LEVELS = ("level1", "level2")
FORMAT_FILE, SYNONYM_FILE = "format.csv", "synonym.xlsx"
_WHEEL_FILE = re.compile(r"^wheel(\d+)\.xlsx$")
# pandas.read_csv, which the official code reads format.csv with, turns these cells into NaN ("").
_PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
              "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


@dataclasses.dataclass
class OfficialWheels:
    folder: Path
    format_mapping: dict[str, list[str]]
    """word form -> format.csv names (level 3 -> level 2 in the official comments)."""
    raw_mapping: dict[str, list[str]]
    """name or synonym -> wheel words (level 2 -> level 1 in the official comments)."""
    wheels: dict[str, dict[str, dict[str, str]]]
    """wheel name ("wheel1") -> level ("level1"/"level2") -> wheel word -> its class."""
    sha256: dict[str, str]
    """file name -> sha256 of its bytes: the wheel source recorded in results."""
    _memo: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def version(self) -> str:
        digest = hashlib.sha256("".join(f"{n}:{h}" for n, h in sorted(self.sha256.items())).encode()).hexdigest()
        return f"official-emotion-wheel:{digest[:12]}"

    def wheel_names(self) -> list[str]:
        return list(self.wheels)

    def map_word(self, word: str, wheel: str, level: str) -> str:
        """`func_backward_case3`: the word's class on `wheel` at `level`, "" when it has none."""
        key = (word, wheel, level)
        if (hit := self._memo.get(key)) is not None:
            return hit
        wheel_map = self.wheels[wheel][level]
        candidates = sorted(raw for name in self.format_mapping.get(word, ()) for raw in self.raw_mapping.get(name, ()))
        mapped = next((wheel_map[c] for c in candidates if c in wheel_map), "")
        self._memo[key] = mapped
        return mapped

    def map_labels(self, labels, wheel: str, level: str) -> set[str]:
        """The official per-sample step: parse, lower-case and strip, map, drop unmapped, as a set."""
        classes = (self.map_word(label.lower().strip(), wheel, level) for label in parse_label_list(labels))
        return {c for c in classes if c}


def is_wheel_folder(source: str | Path) -> bool:
    return Path(source).is_dir()


def load_official_wheels(folder: str | Path) -> OfficialWheels:
    folder = Path(folder)
    if not folder.is_dir():
        raise TaxonomyError(f"{folder}: not a folder (expected the official emotion_wheel/ folder)")
    wheel_files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _WHEEL_FILE.match(p.name)))
    missing = [name for name in (FORMAT_FILE, SYNONYM_FILE) if not (folder / name).is_file()]
    if missing or not wheel_files:
        raise TaxonomyError(
            f"{folder}: an official emotion-wheel folder needs {FORMAT_FILE}, {SYNONYM_FILE} and wheel1.xlsx..wheelN.xlsx; "
            f"missing {missing + ([] if wheel_files else ['wheel*.xlsx'])}"
        )
    wheels = {f"wheel{n}": _wheel_maps(_read_wheel(path)) for n, path in wheel_files}
    files = [folder / FORMAT_FILE, folder / SYNONYM_FILE, *(p for _, p in wheel_files)]
    return OfficialWheels(
        folder=folder,
        format_mapping=_read_format(folder / FORMAT_FILE),
        raw_mapping=_read_synonyms(folder / SYNONYM_FILE),
        wheels=wheels,
        sha256={p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    )


def _sheet_rows(path: Path) -> tuple[list[str], list[tuple]]:
    """(header, rows) of the first sheet."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a file that is not a workbook
        raise TaxonomyError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        rows = list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        raise TaxonomyError(f"{path}: the first sheet is empty (expected a header row)")
    header = ["" if cell is None else str(cell).strip() for cell in rows[0]]
    return header, rows[1:]


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise TaxonomyError(f"{path}: no column {name!r} in the header row {header}")
    return header.index(name)


def _read_wheel(path: Path) -> dict[str, dict[str, list[str]]]:
    """`read_wheel_to_map`: level1 -> level2 -> level-3 words, empty cells repeating the cell above."""
    header, rows = _sheet_rows(path)
    columns = [_column(header, level, path) for level in ("level1", "level2", "level3")]
    current = ["", "", ""]
    tree: dict[str, dict[str, list[str]]] = {}
    for number, row in enumerate(rows, start=2):
        cells = [row[c] if c < len(row) else None for c in columns]
        if all(cell is None for cell in cells):
            continue  # a blank row: pandas skips it too
        for i, cell in enumerate(cells):
            if cell is not None:
                current[i] = str(cell)
        level1, level2, level3 = (value.lower().strip() for value in current)
        if not (level1 and level2 and level3):
            raise TaxonomyError(f"{path}: row {number}: level1, level2 and level3 must be known (directly or from the rows above)")
        tree.setdefault(level1, {}).setdefault(level2, []).append(level3)
    if not tree:
        raise TaxonomyError(f"{path}: no wheel rows under the header")
    return tree


def _wheel_maps(tree: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, str]]:
    """`func_get_wheel_cluster` for both levels; later rows overwrite earlier ones, as there."""
    level1_map: dict[str, str] = {}
    level2_map: dict[str, str] = {}
    for level1, children in tree.items():
        level1_map[level1] = level1
        level2_map[level1] = sorted(children)[0]
        for level2, words in children.items():
            level1_map[level2] = level1
            level2_map[level2] = level2
            for word in words:
                level1_map[word] = level1
                level2_map[word] = level2
    return {"level1": level1_map, "level2": level2_map}


def _read_format(path: Path) -> dict[str, list[str]]:
    """`read_format2raws`: word form -> names; every name also maps to itself."""
    mapping: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise TaxonomyError(f"{path}: expected a header with columns name and format, got {reader.fieldnames}")
        for row in reader:
            raw = _csv_cell(row.get("name"))
            for form in parse_label_list(_csv_cell(row.get("format"))):
                mapping.setdefault(form, []).append(raw)
            mapping.setdefault(raw, []).append(raw)
    return mapping


def _csv_cell(value: str | None) -> str:
    return "" if value is None or value in _PANDAS_NA else value


def _read_synonyms(path: Path) -> dict[str, list[str]]:
    """`read_candidate_synonym_merge`: name or synonym -> wheel words, merged over every run."""
    header, rows = _sheet_rows(path)
    runs = sorted(int(m.group(1)) for name in header if (m := re.fullmatch(r"word_run(\d+)", name)))
    if not runs:
        raise TaxonomyError(f"{path}: expected columns word_run1, synonym_run1, ...; header is {header}")
    merged: dict[str, set[str]] = {}
    for run in runs:
        word_col, synonym_col = _column(header, f"word_run{run}", path), _column(header, f"synonym_run{run}", path)
        for row in rows:
            word = row[word_col] if word_col < len(row) else None
            if word is None or not str(word).strip():
                continue
            raw = str(word).strip().lower()
            merged.setdefault(raw, set()).add(raw)
            synonyms = row[synonym_col] if synonym_col < len(row) else None
            for synonym in parse_label_list(None if synonyms is None else str(synonyms)):
                merged.setdefault(synonym.strip().lower(), set()).add(raw)
    return {word: sorted(raws) for word, raws in merged.items()}
