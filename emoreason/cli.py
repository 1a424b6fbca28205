"""The `emoreason` console script: one subcommand per stage.

This module and `emoreason.demo` are the application layer: they dispatch into the stage packages
(data_prep, train, eval) by import path, lazily, so `emoreason --help` stays fast and the core
library modules never import the stages.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with main(argv), one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "init": ("emoreason.init_cli", "build tiny random-weight encoders and LLM for offline trials; print the config lines"),
    "prep": ("emoreason.data_prep.prep_cli", "decode clips, crop faces and cache encoder features"),
    "convert": ("emoreason.data_prep.convert_cli", "convert a public annotation format into schema JSONL"),
    "instruct": ("emoreason.data_prep.instruct_cli", "build instruction conversations from labelled samples"),
    "synth": ("emoreason.data_prep.synthetic", "generate the synthetic emotion video data set"),
    "train": ("emoreason.train.cli", "align projectors or LoRA-tune the emotion LM (resumable)"),
    "export": ("emoreason.serving.export", "merge the LoRA into a standalone serving checkpoint"),
    "serve": ("emoreason.serving.serve_cli", "OpenAI-compatible HTTP server (hf or vllm backend)"),
    "chat": ("emoreason.serving.chat", "multi-turn chat in the terminal, media attached by path"),
    "web": ("emoreason.web.web_cli", "browser app: chat about a clip, what the model saw, eval results"),
    "infer": ("emoreason.serving.infer", "batch predictions over a schema JSONL (resumable)"),
    "eval": ("emoreason.eval.eval_cli", "score predictions, write results with provenance and the leaderboard"),
    "submit": ("emoreason.eval.submit_cli", "write and validate MER2023/MER2025/EMER leaderboard files"),
    "demo": ("emoreason.demo", "run the end-to-end demo on the embedded default"),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    return f"usage: emoreason <command> [args]\n\ncommands:\n{rows}\n\nRun `emoreason <command> --help` for a command's options."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from emoreason import __version__

        print(f"emoreason {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"emoreason: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
