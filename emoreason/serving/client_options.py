"""The command-line options of a command that talks to a model: a model directory loaded in this process
(--model, --backend, --device) or a running `emoreason serve` (--url, --api-key).

Shared by `chat` and `web`, so both take the same flags with the same defaults; the trust options
(emoreason.serving.trust_options) go with them.
"""

from __future__ import annotations

import argparse
import os

from emoreason.serving.backends import BACKENDS, load_engine
from emoreason.serving.engine import InferenceEngine
from emoreason.serving.trust_options import trust_from_args


def add_model_or_server_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--model", help="trained or exported model directory, run in this process")
    where.add_argument("--url", help="a running `emoreason serve`, e.g. http://127.0.0.1:8000")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="hf", help="in-process backend for --model (default hf)")
    parser.add_argument("--device", default="cpu", help="torch device for --model, e.g. cuda (default cpu)")
    # The variable `emoreason serve` reads, so a client on the same machine needs no flag.
    parser.add_argument("--api-key", default=os.environ.get("EMOREASON_API_KEY"), help="API key for --url (default: $EMOREASON_API_KEY)")


def engine_from_args(args: argparse.Namespace) -> InferenceEngine:
    """The --model engine; BackendError/ConfigError when it cannot be loaded (ConfigError also for bad trust options)."""
    return load_engine(args.backend, args.model, device=args.device, trust=trust_from_args(args))
