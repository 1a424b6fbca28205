"""`emoreason convert FORMAT --input FILE --out samples.jsonl`: a public annotation file to schema JSONL.

    emoreason convert mer2023 --input train_label.csv --out data/mer2023.jsonl --video-dir video --ext mp4
    emoreason convert generic-csv --input clips.csv --out data/clips.jsonl --mapping '{"id": "clip", "media.video": "path"}'

Without --lenient the first bad row stops the run; with it, bad rows are listed and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emoreason.cli_args import HelpFormatter, add_flag_with_positional_alias, resolve_positional_alias
from emoreason.data_prep.adapters import ADAPTERS
from emoreason.schema import SchemaError, write_samples


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason convert",
        description="Convert a public annotation file into schema JSONL (formats: docs/adapters.md).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("format", choices=sorted(ADAPTERS), help="annotation format (see docs/adapters.md)")
    add_flag_with_positional_alias(parser, "--input", "annotation file (CSV, TXT or JSON as the format expects)", "FILE")
    parser.add_argument("--out", required=True, help="schema JSONL to write (replaced atomically)")
    parser.add_argument("--video-dir", help="folder of the videos, relative to the data root (default: video)")
    parser.add_argument("--ext", help="video file extension (default: mp4)")
    parser.add_argument("--mapping", help="generic-csv only: JSON object (or a .json file) of schema field -> column")
    parser.add_argument("--id-from-path", metavar="COLUMN", help="generic-csv only: ids are this column's file names (clips/c02.mp4 -> c02)")
    parser.add_argument("--media-prefix", metavar="DIR", help="generic-csv only: folder put before every media path (relative to the data root)")
    parser.add_argument("--split", metavar="VALUE", help="generic-csv only: keep the rows whose source.split column is VALUE")
    parser.add_argument("--lenient", action="store_true", help="skip and list bad rows instead of stopping at the first")
    return parser


def _mapping(text: str) -> Any:
    """The --mapping value: inline JSON, or the path of a JSON file."""
    source = text if text.lstrip().startswith("{") else Path(text).read_text(encoding="utf-8")
    return json.loads(source)


GENERIC_ONLY = {"--mapping": "mapping", "--id-from-path": "id_from_path", "--media-prefix": "media_prefix", "--split": "split"}


def _adapter_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    if args.format == "generic-csv":
        if args.mapping is None:
            parser.error("generic-csv needs --mapping, e.g. '{\"id\": \"clip\", \"media.video\": \"path\"}'")
        if args.video_dir is not None or args.ext is not None:
            parser.error("--video-dir and --ext do not apply to generic-csv: media paths come from mapped columns (see --media-prefix)")
        try:
            mapping = _mapping(args.mapping)
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"--mapping: expected a JSON object or a readable .json file: {exc}")
        return {"mapping": mapping, "id_from_path": args.id_from_path, "media_prefix": args.media_prefix, "split": args.split}
    generic_only = [flag for flag, value in GENERIC_ONLY.items() if getattr(args, value) is not None]
    if generic_only:
        parser.error(f"{', '.join(generic_only)} only apply to generic-csv, not {args.format}")
    # Only what was given: the defaults (video, mp4) are the adapters' own.
    return {option: value for option, value in (("video_dir", args.video_dir), ("ext", args.ext)) if value is not None}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    resolve_positional_alias(parser, args, "--input")
    options = _adapter_options(args, parser)
    errors: list[SchemaError] | None = [] if args.lenient else None
    try:
        samples = ADAPTERS[args.format](args.input, errors=errors, **options)
    except (OSError, ValueError) as exc:  # SchemaError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for exc in errors or []:
        print(f"skipped: {exc}", file=sys.stderr)
    if not samples:
        print(f"error: no samples converted from {args.input}", file=sys.stderr)
        return 1
    write_samples(args.out, samples)
    skipped = f", skipped {len(errors)} bad row{'s' if len(errors) > 1 else ''}" if errors else ""
    print(f"converted {len(samples)} samples from {args.input} ({args.format}) to {args.out}{skipped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
