"""A leaderboard across results files: one row per results JSON, as Markdown and as HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path

from emoreason.atomic import write_text_atomic

RESULTS_SUFFIX = ".results.json"

# (column header, path into the results JSON, format); a result without the value shows "-".
COLUMNS: tuple[tuple[str, tuple, str], ...] = (
    ("run", ("name",), "{}"),
    ("model", ("provenance", "model"), "{}"),
    ("n", ("counts", "references"), "{}"),
    ("acc / WAR", ("classification", "war"), "{:.4f}"),
    ("weighted F1", ("classification", "weighted_f1"), "{:.4f}"),
    ("macro F1", ("classification", "macro_f1"), "{:.4f}"),
    ("UAR", ("classification", "uar"), "{:.4f}"),
    ("valence MSE", ("valence", "mse"), "{:.4f}"),
    ("valence CCC", ("valence", "ccc"), "{:.4f}"),
    ("MER2023", ("mer2023_score",), "{:.4f}"),
    ("OV F L1", ("open_vocab", "levels", "1", "f1"), "{:.4f}"),
    ("OV F L2", ("open_vocab", "levels", "2", "f1"), "{:.4f}"),
    ("clue overlap", ("llm_judge", "clue_overlap", "mean"), "{:.2f}"),
    ("label overlap", ("llm_judge", "label_overlap", "mean"), "{:.2f}"),
    ("protocol", ("provenance", "protocol"), "{}"),
    ("EW F L1", ("protocol_scores", "levels", "level1", "f1"), "{:.4f}"),
    ("EW F L2", ("protocol_scores", "levels", "level2", "f1"), "{:.4f}"),
    ("protocol score", ("protocol_scores", "score"), "{:.4f}"),
    ("hit rate", ("protocol_scores", "hit_rate"), "{:.4f}"),
    ("sentiment F1", ("protocol_scores", "weighted_f1"), "{:.4f}"),
    ("extraction", ("provenance", "open_label_extraction"), "{}"),
    ("unmatched", ("label_extraction", "unmatched"), "{}"),
    ("date", ("provenance", "date"), "{}"),
)
SORT_KEYS = (("classification", "weighted_f1"), ("protocol_scores", "score"), ("open_vocab", "levels", "1", "f1"), ("llm_judge", "clue_overlap", "mean"))


def _get(result: dict, path: tuple):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def _sort_key(result: dict) -> tuple:
    return tuple(-(v if isinstance(v := _get(result, key), int | float) else float("-inf")) for key in SORT_KEYS)


def load_results(results_dir: str | Path) -> list[dict]:
    results = []
    for path in sorted(Path(results_dir).glob(f"*{RESULTS_SUFFIX}")):
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a results JSON ({exc.msg})") from None
    return sorted(results, key=_sort_key)


def rows(results: list[dict]) -> list[list[str]]:
    out = []
    for result in results:
        out.append(["-" if (v := _get(result, path)) is None else fmt.format(v) for _, path, fmt in COLUMNS])
    return out


def to_markdown(results: list[dict]) -> str:
    headers = [name for name, _, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(results)]
    return "\n".join(lines) + "\n"


def to_html(results: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in COLUMNS)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows(results))
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>emoreason leaderboard</title>\n"
        "<style>table{border-collapse:collapse;font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head>\n"
        f"<body><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></body></html>\n"
    )


def write_leaderboard(results_dir: str | Path) -> tuple[Path, Path]:
    """leaderboard.md and leaderboard.html in `results_dir`, from every *.results.json there."""
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    md, page = results_dir / "leaderboard.md", results_dir / "leaderboard.html"
    write_text_atomic(md, to_markdown(results))
    write_text_atomic(page, to_html(results))
    return md, page
