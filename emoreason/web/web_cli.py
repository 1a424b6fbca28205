"""`emoreason web`: chat with a model about a clip, see what it saw, and browse eval results, in a browser.

    emoreason web --model runs/demo/export --media-root runs/demo/data --results runs/demo/leaderboard
    emoreason web --url http://127.0.0.1:8000 --api-key KEY --inspect-model runs/mer/export
    emoreason web --results runs/leaderboard          # results only, no model

Binds 127.0.0.1 unless told otherwise; a public gradio.live link only with --share.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from emoreason.cli_args import HelpFormatter
from emoreason.config import ConfigError
from emoreason.serving.backends import BackendError
from emoreason.serving.client_options import add_model_or_server_arguments, engine_from_args
from emoreason.serving.serve_cli import _is_loopback  # serve's rule for when to warn, not a second one
from emoreason.serving.engine import InferenceEngine
from emoreason.serving.trust_options import add_trust_arguments, trust_from_args
from emoreason.web.inspection import Inspector, ModelMedia
from emoreason.web.settings import WebSettings
from emoreason.web.uploads import UploadLimits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason web", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    add_model_or_server_arguments(parser)
    parser.add_argument("--inspect-model", help="with --url: the served model's directory, whose media settings the "
                        "'what the model saw' tab uses (with --model: that model)")
    parser.add_argument("--media-root", help="folder the app may pick clips from and play result clips from (paths confined to it)")
    parser.add_argument("--results", help="results JSON or leaderboard folder (`emoreason eval --out-dir`) to open at start")
    parser.add_argument("--results-root", help="folder that results paths typed into the app are confined to "
                        "(default: the folder above --results, else the working directory)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public gradio.live link (off by default)")
    parser.add_argument("--max-upload-mb", type=float, default=64.0, help="largest media file accepted, in MiB (default 64)")
    parser.add_argument("--max-media-seconds", type=float, default=600.0, help="longest audio/video clip accepted (default 600)")
    parser.add_argument("--max-tokens", type=int, default=256, help="the answer length the app starts with")
    parser.add_argument("--temperature", type=float, default=0.0, help="the temperature the app starts with (0 decodes greedily)")
    add_trust_arguments(parser)
    return parser


@dataclasses.dataclass
class RunningApp:
    app: object
    url: str

    def close(self) -> None:
        self.app.close()


def settings_from_args(args: argparse.Namespace, engine: InferenceEngine | None) -> WebSettings:
    """ConfigError for an --inspect-model directory that cannot be read."""
    model_media = ModelMedia.of_engine(engine) if engine is not None else None
    note = ""
    if model_media is None and (args.inspect_model or args.model):
        model_media = ModelMedia.of_model_dir(args.inspect_model or args.model, trust_from_args(args))
    if model_media is None:
        note = ("the server does not say how it turns media into features: start the app with "
                "--inspect-model DIR (the served model's directory) to see it here") if args.url else \
            "this engine does not say how it turns media into features"
    results = Path(args.results) if args.results else None
    if args.results_root:
        results_root = Path(args.results_root)
    elif results is not None:
        results_root = (results if results.is_dir() else results.parent).resolve().parent
    else:
        results_root = Path.cwd()
    return WebSettings(
        limits=UploadLimits(max_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_media_seconds),
        media_root=Path(args.media_root).resolve() if args.media_root else None,
        results=results,
        results_root=results_root,
        inspector=Inspector(model_media) if model_media else None,
        inspect_note=note,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )


def start(argv: list[str] | None = None, engine: InferenceEngine | None = None) -> RunningApp:
    """Build and launch the app without blocking; `engine` replaces loading --model (tests, notebooks).

    BackendError/ConfigError when the model cannot be loaded, ValueError for bad options.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # this app reports nothing to anyone
    from emoreason.web.app import build_app
    from emoreason.web.conversation import LocalBackend, RemoteBackend

    args = build_parser().parse_args(argv)
    if args.media_root and not Path(args.media_root).is_dir():
        raise ValueError(f"--media-root {args.media_root}: not a folder")
    if engine is None and args.model:
        engine = engine_from_args(args)
    # A server that is down now may be up by the first message: the app starts either way and says so then.
    backend = LocalBackend(engine) if engine is not None else RemoteBackend(args.url, args.api_key) if args.url else None
    settings = settings_from_args(args, engine)
    app = build_app(backend, settings)
    allowed = [str(settings.media_root)] if settings.media_root else []  # clips play from here, and only from here
    app.queue()
    _, url, share_url = app.launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True, quiet=True,
        allowed_paths=allowed, max_file_size=settings.limits.max_bytes, ssr_mode=False, show_error=True,
    )
    print(f"emoreason web: {url}" + (f" (public: {share_url})" if share_url else ""), flush=True)
    if not _is_loopback(args.host):
        print(f"emoreason web: warning: listening on {args.host}: anyone who can reach it can use the model and read "
              "files under the media root", file=sys.stderr)
    return RunningApp(app, url)


def main(argv: list[str] | None = None) -> int:
    try:
        running = start(argv)
    except (BackendError, ConfigError, ValueError, OSError) as exc:
        print(f"emoreason web: error: {exc}", file=sys.stderr)
        return 2
    try:
        running.app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
