"""The results tab's event handlers: open results, pick a run, filter its samples, play one.

Paths typed into the app are confined to the results root; clips play from the media root, confined
as `serve` confines media paths. A path that is not eval output is a message, never a crash.
"""

# No `from __future__ import annotations`: Gradio finds the gr.SelectData parameter by its runtime annotation.
import dataclasses
from pathlib import Path

import gradio as gr
import pandas as pd

from emoreason.media.errors import MediaError
from emoreason.media.paths import confined_path
from emoreason.web.chat_tab import error
from emoreason.web.results import UNMATCHED, Board, ResultsError, SampleRow, filter_rows, open_board, plot_paths, sample_rows
from emoreason.web.settings import WebSettings

SAMPLE_HEADERS = ["id", "true label", "predicted", "outcome", "answer", "media"]
ANY = "(any)"


@dataclasses.dataclass
class OpenResults:
    """Per browser session: the board opened last, and the samples of the run shown."""

    board: Board | None = None
    rows: list[SampleRow] = dataclasses.field(default_factory=list)


class ResultsHandlers:
    def __init__(self, settings: WebSettings):
        self.settings = settings

    def open(self, typed: str, state: OpenResults) -> tuple:
        """(status, leaderboard, run choice, *run view) for a path typed into the app."""
        try:
            path = self._confined(typed)
        except ResultsError as exc:
            return (error(str(exc)), gr.update(), gr.update(), *self._unchanged())
        return self.open_path(path, state)

    def open_path(self, path: Path, state: OpenResults) -> tuple:
        try:
            board = open_board(path)
        except ResultsError as exc:
            return (error(str(exc)), gr.update(), gr.update(), *self._unchanged())
        state.board = board
        names = [str(r["name"]) for r in board.results]
        status = f"opened {path}: {len(names)} result{'s' * (len(names) != 1)}"
        table = pd.DataFrame(board.rows, columns=board.headers)
        view = self.select_run(names[0], state)
        return (status if not view[0].startswith("**error") else f"{status}; {view[0]}", table,
                gr.update(choices=names, value=names[0]), *view[1:])

    def _confined(self, typed: str) -> Path:
        typed = (typed or "").strip()
        if not typed:
            raise ResultsError("type the path of a results JSON or a leaderboard folder")
        root = self.settings.results_root.resolve()
        candidate = Path(typed)
        if candidate.is_absolute():
            if not candidate.resolve().is_relative_to(root):
                raise ResultsError(f"{typed}: outside the results root {root} (start the app with --results-root to choose another)")
            typed = str(candidate.resolve().relative_to(root)) or "."
        if typed == ".":
            return root
        try:
            return confined_path(typed, root, "results root")
        except MediaError as exc:
            raise ResultsError(f"{typed}: {exc.detail or exc.reason}") from None

    @staticmethod
    def _unchanged() -> tuple:
        return tuple(gr.update() for _ in range(7))

    def select_run(self, name: str | None, state: OpenResults) -> tuple:
        """(status, confusion plot, recall plot, true-label filter, predicted filter, samples, count, sample choice)."""
        board = state.board
        if board is None or name is None:
            return ("", None, None, gr.update(), gr.update(), *self._samples([]))
        index = next((i for i, r in enumerate(board.results) if str(r["name"]) == name), 0)
        result, path = board.results[index], board.paths[index]
        plots = plot_paths(result, path)
        status = ""
        try:
            state.rows, labels = sample_rows(result, path)
        except ResultsError as exc:
            state.rows, labels = [], []
            status = error(f"samples of {name}: {exc}")
        label_choices = [ANY] + labels
        return (
            status,
            str(plots["confusion"]) if "confusion" in plots else None,
            str(plots["recall"]) if "recall" in plots else None,
            gr.update(choices=label_choices, value=ANY),
            gr.update(choices=label_choices + [UNMATCHED], value=ANY),
            *self._samples(state.rows),
        )

    def filter(self, reference: str, predicted: str, misclassified: bool, unmatched: bool, state: OpenResults) -> tuple:
        rows = filter_rows(state.rows, None if reference in (None, ANY) else reference,
                           None if predicted in (None, ANY) else predicted, bool(misclassified), bool(unmatched))
        return self._samples(rows, len(state.rows))

    @staticmethod
    def _samples(rows: list[SampleRow], total: int | None = None) -> tuple:
        table = pd.DataFrame([[r.id, r.reference, r.predicted or UNMATCHED, r.outcome, r.answer, r.media] for r in rows], columns=SAMPLE_HEADERS)
        total = len(rows) if total is None else total
        return table, f"{len(rows)} of {total} samples", gr.update(choices=[r.id for r in rows], value=None)

    @staticmethod
    def clicked_id(table: pd.DataFrame, event: gr.SelectData) -> str | None:
        """The id of the samples-table row clicked (any cell of it)."""
        row_index = event.index[0] if isinstance(event.index, list | tuple) else event.index
        if table is None or not 0 <= row_index < len(table):
            return None
        return str(table.iloc[row_index]["id"])

    def show_sample(self, sample_id: str | None, state: OpenResults) -> tuple:
        """(description, video, audio, image) of one sample: the clip beside the reference and the prediction."""
        row = next((r for r in state.rows if r.id == sample_id), None)
        if row is None:
            return ("" if not sample_id else error(f"no sample {sample_id} in this run")), None, None, None
        text = f"**{row.id}**: true **{row.reference}**, predicted **{row.predicted or UNMATCHED}** ({row.outcome})\n\n> {row.answer}"
        if row.media is None:
            return text + "\n\n(no media in this sample)", None, None, None
        if self.settings.media_root is None:
            return text + "\n\n(start the app with --media-root DATA_ROOT to play the clip)", None, None, None
        try:
            path = confined_path(row.media, self.settings.media_root, "media root")
        except MediaError as exc:
            return text + "\n\n" + error(f"{row.media}: {exc.detail or exc.reason}"), None, None, None
        if not path.is_file():
            return text + "\n\n" + error(f"{row.media}: not found under the media root"), None, None, None
        media = {row.media_kind: str(path)}
        return text, *(gr.update(value=media.get(kind), visible=kind in media) for kind in ("video", "audio", "image"))
