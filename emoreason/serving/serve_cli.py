"""`emoreason serve --model DIR`: the OpenAI-compatible server (emoreason.serving.server) under uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from emoreason.cli_args import HelpFormatter
from emoreason.config import ConfigError
from emoreason.media.image import MAX_IMAGE_PIXELS
from emoreason.serving.backends import BACKENDS, BackendError, load_engine
from emoreason.serving.media_stage import POOLS, MediaStageConfig
from emoreason.serving.trust_options import add_trust_arguments, trust_from_args

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason serve",
        description="Serve a trained model over an OpenAI-compatible HTTP API (POST /v1/chat/completions).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--model", required=True, help="trained model directory (emoreason_model.json, adapter/, ...)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="hf", help="inference backend (default hf)")
    parser.add_argument("--device", default="cpu", help="torch device for encoders, projectors (and the hf LLM), e.g. cuda")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests batched into one generate call (hf) / scheduled at once (vllm)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument("--media-root", help="folder that media paths in requests are relative to; without it only data URLs are accepted")
    parser.add_argument("--api-key", default=os.environ.get("EMOREASON_API_KEY"), help="require Authorization: Bearer KEY (default: $EMOREASON_API_KEY)")
    parser.add_argument("--max-body-mb", type=float, default=64.0, help="request body limit in MiB, base64 media included (default 64)")
    parser.add_argument("--max-media-seconds", type=float, default=600.0, help="longest audio/video clip accepted (default 600)")
    parser.add_argument("--max-image-pixels", type=int, default=MAX_IMAGE_PIXELS, help=f"largest image accepted, width x height (default {MAX_IMAGE_PIXELS})")
    parser.add_argument("--max-tokens-limit", type=int, default=2048, help="largest max_tokens a request may ask for (default 2048)")
    parser.add_argument("--served-model-name", help="model id clients use (default: the model folder's name, or its run folder's for export/ or model/)")
    stage = MediaStageConfig()
    parser.add_argument("--media-workers", type=int, default=stage.workers, help=f"decode + face-detection workers of the media stage; 0: one request's media at a time (default {stage.workers})")
    parser.add_argument("--media-pool", choices=POOLS, default=stage.pool, help=f"media workers as threads or spawned processes (default {stage.pool})")
    parser.add_argument("--media-memo-mb", type=float, default=stage.memo_mb, help=f"MiB of features kept for requests resending the same media (a chat's clip on every turn); 0: none (default {stage.memo_mb:g})")
    parser.add_argument("--media-batch-window-ms", type=float, default=stage.batch_window_ms, help=f"how long the encoders wait for more decoded requests to batch (default {stage.batch_window_ms})")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="uvicorn's log level")
    add_trust_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvicorn

    from emoreason.serving.server import ServerSettings, create_app

    if not Path(args.model).is_dir():
        print(f"emoreason serve: error: --model {args.model} is not a directory", file=sys.stderr)
        return 2
    media_root = Path(args.media_root) if args.media_root else None
    if media_root is not None and not media_root.is_dir():
        print(f"emoreason serve: error: --media-root {media_root} is not a directory", file=sys.stderr)
        return 2
    try:
        settings = ServerSettings(
            media_root=media_root,
            api_key=args.api_key or None,
            max_body_bytes=int(args.max_body_mb * 2**20),
            max_media_seconds=args.max_media_seconds,
            max_image_pixels=args.max_image_pixels,
            max_tokens_limit=args.max_tokens_limit,
            model_name=args.served_model_name,
        )
        media_stage = MediaStageConfig(workers=args.media_workers, pool=args.media_pool, batch_window_ms=args.media_batch_window_ms,
                                       memo_mb=args.media_memo_mb, max_batch=args.max_batch_size)
        engine = load_engine(
            args.backend, args.model, device=args.device, max_batch_size=args.max_batch_size, trust=trust_from_args(args),
            media_stage=media_stage,
        )
    except (ConfigError, BackendError) as exc:
        print(f"emoreason serve: error: {exc}", file=sys.stderr)
        return 2
    if settings.api_key is None and not _is_loopback(args.host):
        print(f"emoreason serve: warning: listening on {args.host} without --api-key: anyone who can reach it can use the model", file=sys.stderr)
    uvicorn.run(create_app(engine, settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    sys.exit(main())
