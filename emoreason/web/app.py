"""The Gradio app: a chat tab, a "what the model saw" tab and a results tab, wired to their handlers.

Element ids (`elem_id`) are the app's stable surface for the browser tests and for anyone scripting
it; the layout may change around them.
"""

from __future__ import annotations

import gradio as gr

from emoreason.web.chat_tab import ChatHandlers
from emoreason.web.conversation import Backend, Conversation
from emoreason.web.results_tab import ANY, OpenResults, ResultsHandlers
from emoreason.web.settings import WebSettings
from emoreason.web.uploads import list_media_root

TITLE = "emoreason"


def build_app(backend: Backend | None, settings: WebSettings) -> gr.Blocks:
    chat = ChatHandlers(backend, settings)
    results = ResultsHandlers(settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"## {TITLE}: " + (backend.description if backend else "no model (results only)"), elem_id="header")
        conversation = gr.State(Conversation())
        opened = gr.State(OpenResults())
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_ui = _chat_tab(settings)
            with gr.Tab("What the model saw", id="saw"):
                saw_ui = _saw_tab()
            with gr.Tab("Results", id="results"):
                results_ui = _results_tab(settings)
        _wire_chat(chat, conversation, chat_ui, saw_ui)
        _wire_results(results, opened, results_ui, settings, app)
    return app


def _chat_tab(settings: WebSettings) -> dict:
    ui: dict = {}
    with gr.Row():
        with gr.Column(scale=3):
            ui["chatbot"] = gr.Chatbot(label="conversation", elem_id="chatbot", height=420, buttons=["copy", "copy_all"])
            with gr.Row():
                ui["message"] = gr.Textbox(placeholder="Ask about the clip, e.g. which emotion does the person express?",
                                           show_label=False, scale=5, elem_id="message")
                ui["send"] = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                ui["reset"] = gr.Button("Reset", scale=1, elem_id="reset")
            ui["status"] = gr.Markdown("", elem_id="chat-status")
            ui["raw"] = gr.Textbox(label="last answer (raw text)", interactive=False, elem_id="raw-answer")
            with gr.Accordion("Sampling", open=False):
                ui["max_tokens"] = gr.Slider(1, 2048, value=settings.max_tokens, step=1, label="max tokens", elem_id="max-tokens")
                ui["temperature"] = gr.Slider(0.0, 2.0, value=settings.temperature, step=0.05, label="temperature (0: greedy)", elem_id="temperature")
                ui["top_p"] = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top p", elem_id="top-p")
                ui["seed"] = gr.Number(value=None, precision=0, label="seed (empty: none)", elem_id="seed")
        with gr.Column(scale=2):
            ui["upload"] = gr.File(label="attach a video, an audio file or an image", file_count="single", elem_id="upload")
            ui["pick"] = gr.Dropdown(choices=list_media_root(settings.media_root), value=None, allow_custom_value=True,
                                     label="or a file under the media root" if settings.media_root else "no media root (--media-root DIR)",
                                     elem_id="pick")
            ui["attach_pick"] = gr.Button("Attach this file", elem_id="attach-pick")
            with gr.Accordion("Record", open=False):
                ui["record_audio"] = gr.Audio(sources=["microphone"], type="filepath", label="record audio", elem_id="record-audio")
                ui["record_video"] = gr.Video(sources=["webcam"], label="record video", elem_id="record-video")
            ui["attached"] = gr.Markdown("no media attached", elem_id="attached")
            ui["video"] = gr.Video(label="attached video", interactive=False, visible=False, elem_id="attached-video")
            ui["audio"] = gr.Audio(label="attached audio", interactive=False, visible=False, type="filepath", elem_id="attached-audio")
            ui["image"] = gr.Image(label="attached image", interactive=False, visible=False, type="filepath", elem_id="attached-image")
    return ui


def _saw_tab() -> dict:
    ui: dict = {}
    ui["summary"] = gr.Markdown("attach a video, an audio file or an image to see what the model gets from it", elem_id="saw-summary")
    ui["table"] = gr.Dataframe(label="modalities", interactive=False, elem_id="saw-modalities")
    ui["frames"] = gr.Gallery(label="sampled frames (green: the face that is cropped)", columns=8, height=240, format="png", elem_id="saw-frames")
    ui["crops"] = gr.Gallery(label="face crops fed to the face encoder", columns=8, height=240, format="png", elem_id="saw-crops")
    ui["waveform"] = gr.Image(label="audio waveform (16 kHz mono, as the audio encoder gets it)", interactive=False, elem_id="saw-waveform")
    return ui


def _results_tab(settings: WebSettings) -> dict:
    ui: dict = {}
    with gr.Row():
        ui["path"] = gr.Textbox(value=str(settings.results) if settings.results else "", scale=5,
                                label=f"results JSON or leaderboard folder (under {settings.results_root})", elem_id="results-path")
        ui["open"] = gr.Button("Open", scale=1, elem_id="results-open")
    ui["status"] = gr.Markdown("", elem_id="results-status")
    ui["leaderboard"] = gr.Dataframe(label="leaderboard (click a column header to sort)", interactive=False, elem_id="leaderboard")
    ui["run"] = gr.Dropdown(choices=[], label="run", elem_id="results-run")
    with gr.Row():
        ui["confusion"] = gr.Image(label="confusion matrix", interactive=False, type="filepath", elem_id="confusion")
        ui["recall"] = gr.Image(label="per-class recall", interactive=False, type="filepath", elem_id="recall")
    with gr.Row():
        ui["true"] = gr.Dropdown(choices=[ANY], value=ANY, label="true label", elem_id="filter-true")
        ui["predicted"] = gr.Dropdown(choices=[ANY], value=ANY, label="predicted label", elem_id="filter-predicted")
        ui["wrong"] = gr.Checkbox(label="misclassified only", elem_id="filter-wrong")
        ui["unmatched"] = gr.Checkbox(label="unmatched answers only", elem_id="filter-unmatched")
    ui["count"] = gr.Markdown("", elem_id="samples-count")
    ui["samples"] = gr.Dataframe(label="samples (click a row to play its clip)", interactive=False, elem_id="samples")
    ui["sample"] = gr.Dropdown(choices=[], label="sample", elem_id="sample-pick")
    ui["sample_text"] = gr.Markdown("", elem_id="sample-text")
    with gr.Row():
        ui["sample_video"] = gr.Video(label="clip", interactive=False, elem_id="sample-video")
        ui["sample_audio"] = gr.Audio(label="audio", interactive=False, visible=False, type="filepath", elem_id="sample-audio")
        ui["sample_image"] = gr.Image(label="image", interactive=False, visible=False, type="filepath", elem_id="sample-image")
    return ui


def _wire_chat(chat: ChatHandlers, conversation: gr.State, ui: dict, saw: dict) -> None:
    attachment = [ui["attached"], ui["video"], ui["audio"], ui["image"]]
    seen = [saw["summary"], saw["table"], saw["frames"], saw["crops"], saw["waveform"]]
    ui["upload"].upload(chat.attach_upload, [ui["upload"], conversation], [ui["upload"], ui["status"], *attachment, *seen])
    ui["attach_pick"].click(chat.attach_pick, [ui["pick"], conversation], [ui["upload"], ui["status"], *attachment, *seen])
    for recorder in (ui["record_audio"], ui["record_video"]):
        recorder.stop_recording(chat.attach_recording, [recorder, conversation], [recorder, ui["status"], *attachment, *seen])
    inputs = [ui["message"], ui["chatbot"], conversation, ui["max_tokens"], ui["temperature"], ui["top_p"], ui["seed"]]
    outputs = [ui["chatbot"], ui["message"], ui["status"], ui["raw"], ui["attached"]]
    ui["send"].click(chat.send, inputs, outputs)
    ui["message"].submit(chat.send, inputs, outputs)
    reset_outputs = [ui["chatbot"], ui["message"], ui["status"], ui["raw"], *attachment, *seen]
    ui["reset"].click(chat.reset, [conversation], reset_outputs)
    ui["chatbot"].clear(chat.reset, [conversation], reset_outputs)  # the chatbot's own bin icon clears the model's context too


def _wire_results(results: ResultsHandlers, opened: gr.State, ui: dict, settings: WebSettings, app: gr.Blocks) -> None:
    run_view = [ui["confusion"], ui["recall"], ui["true"], ui["predicted"], ui["samples"], ui["count"], ui["sample"]]
    open_outputs = [ui["status"], ui["leaderboard"], ui["run"], *run_view]
    ui["open"].click(results.open, [ui["path"], opened], open_outputs)
    ui["path"].submit(results.open, [ui["path"], opened], open_outputs)
    ui["run"].input(results.select_run, [ui["run"], opened], [ui["status"], *run_view])
    filters = [ui["true"], ui["predicted"], ui["wrong"], ui["unmatched"], opened]
    for control in (ui["true"], ui["predicted"], ui["wrong"], ui["unmatched"]):
        control.input(results.filter, filters, [ui["samples"], ui["count"], ui["sample"]])
    ui["samples"].select(results.clicked_id, [ui["samples"]], [ui["sample"]])
    ui["sample"].change(results.show_sample, [ui["sample"], opened],
                        [ui["sample_text"], ui["sample_video"], ui["sample_audio"], ui["sample_image"]])
    if settings.results is not None:
        # The results given on the command line are the user's own choice: opened as given, not confined.
        app.load(lambda state: results.open_path(settings.results, state), [opened], open_outputs)
