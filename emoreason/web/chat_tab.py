"""The chat tab's event handlers: attach media, stream a reply, reset; and the "what the model saw" panel.

Handlers return values for Gradio components in the order `app.py` wires them. Every refusal
(bad media, a server down or refusing the key) becomes a message in the status line and the
session goes on; nothing here raises into Gradio for the user's own mistakes.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr
import pandas as pd

from emoreason.serving.chat import ChatError, Sampling
from emoreason.web.conversation import Backend, Conversation, stream_reply
from emoreason.web.inspection import SeenReport
from emoreason.web.settings import WebSettings
from emoreason.web.uploads import UploadError, check_media, pick_from_root

MODALITY_HEADERS = ["modality", "status", "reason", "detail", "features", "seconds"]


def error(message: str) -> str:
    return f"**error:** {message}"


class ChatHandlers:
    def __init__(self, backend: Backend | None, settings: WebSettings):
        self.backend = backend
        self.settings = settings

    # -- media ------------------------------------------------------------------------------

    def attach_upload(self, path: str | None, conversation: Conversation) -> tuple:
        if not path:
            return (gr.update(), "", *self.attachment_view(conversation), *self.saw_view(conversation))
        return self._attach(lambda: check_media(path, self.settings.limits), conversation, clear_upload=True)

    def attach_pick(self, name: str | None, conversation: Conversation) -> tuple:
        if not name:
            return (gr.update(), error("choose or type a file under the media root"), *self.attachment_view(conversation), *self.saw_view(conversation))
        return self._attach(lambda: pick_from_root(name, self.settings.media_root, self.settings.limits), conversation, clear_upload=False)

    def attach_recording(self, path: str | None, conversation: Conversation) -> tuple:
        result = self.attach_upload(path, conversation)
        return (gr.update(value=None) if path else gr.update(), *result[1:])

    def _attach(self, check, conversation: Conversation, clear_upload: bool) -> tuple:
        cleared = gr.update(value=None) if clear_upload else gr.update()
        try:
            item = check()
            conversation.attach(item)
        except UploadError as exc:
            return (cleared, error(str(exc)), *self.attachment_view(conversation), *self.saw_view(conversation))
        status = f"attached {item.kind} **{item.path.name}**; it goes with your next message"
        return (cleared, status, *self.attachment_view(conversation), *self.saw_view(conversation))

    @staticmethod
    def attachment_view(conversation: Conversation) -> tuple:
        """(attached-files text, video preview, audio preview, image preview)."""
        media = conversation.media()
        if media:
            lines = [f"- {m.kind}: `{m.path.name}`" + (" (sent with your next message)" if m in conversation.pending else "") for m in media]
            text = "\n".join(lines)
        else:
            text = "no media attached"
        by_kind = {m.kind: str(m.path) for m in media}
        return text, *(gr.update(value=by_kind.get(kind), visible=kind in by_kind) for kind in ("video", "audio", "image"))

    def saw_view(self, conversation: Conversation) -> tuple:
        """(summary, modality table, frames with boxes, face crops, waveform) for the conversation's media."""
        empty_table = pd.DataFrame(columns=MODALITY_HEADERS)
        inspector = self.settings.inspector
        media = conversation.media()
        if inspector is None:
            return self.settings.inspect_note or "not available for this model", empty_table, [], [], None
        if not media:
            return "attach a video, an audio file or an image to see what the model gets from it", empty_table, [], [], None
        report = inspector.inspect({m.kind: m.path for m in media})
        return _summary(report), _modality_table(report), report.frames, report.crops, report.waveform

    # -- messages ---------------------------------------------------------------------------

    def send(self, text: str, history: list, conversation: Conversation, max_tokens, temperature, top_p, seed) -> Iterator[tuple]:
        """Yields (chat history, message box, status, raw answer, attached) as the reply streams."""
        attached = self.attachment_view(conversation)[0]
        text = (text or "").strip()
        if not text:
            yield history, "", error("type a message first"), gr.update(), attached
            return
        if self.backend is None:
            yield history, text, error("no model: start the app with --model DIR or --url URL"), gr.update(), attached
            return
        try:
            sampling = Sampling(int(max_tokens), float(temperature), float(top_p), None if seed in (None, "") else int(seed))
        except (TypeError, ValueError) as exc:
            yield history, text, error(f"sampling settings: {exc}"), gr.update(), attached
            return
        names = ", ".join(f"{m.kind} {m.path.name}" for m in conversation.pending)
        shown = history + [{"role": "user", "content": text + (f"\n\n*(attached: {names})*" if names else "")}]
        yield shown, "", "generating...", "", attached
        reply = ""
        try:
            for reply in stream_reply(self.backend, conversation, text, sampling):
                yield shown + [{"role": "assistant", "content": reply}], "", "generating...", reply, attached
        except ChatError as exc:
            # The turn is not kept: the user's text goes back into the box, and attached media stays.
            yield history, text, error(str(exc)), gr.update(), self.attachment_view(conversation)[0]
            return
        done = f"answered by {self.backend.description}"
        yield shown + [{"role": "assistant", "content": reply}], "", done, reply, self.attachment_view(conversation)[0]

    def reset(self, conversation: Conversation) -> tuple:
        conversation.reset()
        return ([], "", "conversation reset", "", *self.attachment_view(conversation), *self.saw_view(conversation))


def _summary(report: SeenReport) -> str:
    present = [r.modality for r in report.modalities if r.status == "present"]
    absent = [f"{r.modality} ({r.reason})" for r in report.modalities if r.status == "absent"]
    lines = [
        f"**present:** {', '.join(present) or 'none'}  \n**absent:** {', '.join(absent) or 'none'}",
        f"{len(report.frames)} sampled frames, {len(report.crops)} with a face (the face crops below are what the face encoder gets)",
    ]
    if report.steps:
        lines.append("timing: " + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in report.steps.items()))
    lines += report.notes
    return "\n\n".join(lines)


def _modality_table(report: SeenReport) -> pd.DataFrame:
    rows = [[r.modality, r.status, r.reason, r.detail, r.shape, round(r.seconds, 3)] for r in report.modalities]
    return pd.DataFrame(rows, columns=MODALITY_HEADERS)
