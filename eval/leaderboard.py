"""A leaderboard across results files: one row per results JSON, as Markdown and as HTML.

The HTML page is one self-contained file (no CDN, no network): a title, the table sorted best first,
a header click sorting by that column (a small inline script), and links to each run's plots.
"""

from __future__ import annotations

import html
import json
import os
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


PLOT_NAMES = (("confusion", "confusion"), ("recall", "recall"))

# Click a header: sort by that column, descending first for numbers (best first), then toggle. Cells
# shown as "-" (no value) always sort last. Reads the text of the cells, so the page needs no data copy.
SORT_SCRIPT = """
document.querySelectorAll("table.leaderboard").forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var rows = Array.prototype.slice.call(body.rows);
      var texts = rows.map(function (r) { return r.cells[col].textContent.trim(); });
      var numeric = texts.every(function (t) { return t === "-" || !isNaN(parseFloat(t)); });
      var descending = th.getAttribute("aria-sort") === "descending" ? false
        : th.getAttribute("aria-sort") === "ascending" ? true : numeric;
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        if (x === "-" || y === "-") { return (x === "-") - (y === "-"); }
        var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return descending ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "th{cursor:pointer;background:#f4f4f4;user-select:none}th[aria-sort=descending]::after{content:' \\25BC'}"
    "th[aria-sort=ascending]::after{content:' \\25B2'}p.note{color:#555}"
)


def _plot_links(result: dict, base: Path | None) -> str:
    links = []
    for key, label in PLOT_NAMES:
        path = _get(result, ("plots", key))
        if not isinstance(path, str):
            continue
        # Relative to the page, so the folder can be moved or served as it is.
        href = os.path.relpath(Path(path).resolve(), base.resolve()) if base is not None else path
        links.append(f'<a href="{html.escape(Path(href).as_posix(), quote=True)}">{label}</a>')
    return " ".join(links) or "-"


def to_html(results: list[dict], title: str = "emoreason leaderboard", base: str | Path | None = None) -> str:
    """The page; `base` is the folder the page is written to (plot links are made relative to it)."""
    base = Path(base) if base is not None else None
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in COLUMNS) + "<th>plots</th>"
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + f"<td>{_plot_links(result, base)}</td></tr>"
        for result, row in zip(results, rows(results))
    )
    note = (f"{len(results)} run(s), best weighted F1 first; click a column header to sort by it. "
            "Answers that named no label are counted in \"unmatched\", never as a class.")
    return (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
        f"<style>{STYLE}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n<p class=\"note\">{html.escape(note)}</p>\n"
        f"<table class=\"leaderboard\">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n"
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )


def write_leaderboard(results_dir: str | Path) -> tuple[Path, Path]:
    """leaderboard.md and leaderboard.html in `results_dir`, from every *.results.json there."""
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    md, page = results_dir / "leaderboard.md", results_dir / "leaderboard.html"
    write_text_atomic(md, to_markdown(results))
    write_text_atomic(page, to_html(results, title=f"emoreason leaderboard: {results_dir.resolve().name}", base=results_dir))
    return md, page
