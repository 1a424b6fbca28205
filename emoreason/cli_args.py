"""argparse pieces every `emoreason` subcommand shares: one help style (each option's help ends
with its default) and old positional spellings kept, with a warning, beside their flag."""

from __future__ import annotations

import argparse
import sys


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter, minus the noise: no "(default: None)" on options
    without a default (required ones, or ones whose absence the help text explains), no "False" on
    flags, no empty lists, and none where the help text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_ = action.help or ""
        default = action.default
        # `is` for None/False: 0 == False, and a default of 0 is worth showing.
        if action.required or default is None or default is False or default is argparse.SUPPRESS or default in ([], ""):
            return help_
        if "%(default)" in help_ or "default" in help_.lower():
            return help_
        return super()._get_help_string(action)


def add_flag_with_positional_alias(parser: argparse.ArgumentParser, flag: str, help: str, metavar: str | None = None) -> None:
    """`flag VALUE`, the one documented spelling; a bare positional VALUE still works for one release."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, metavar=metavar, help=help)
    parser.add_argument(f"{dest}_positional", nargs="?", metavar=metavar or dest.upper(), help=argparse.SUPPRESS)


def resolve_positional_alias(parser: argparse.ArgumentParser, args: argparse.Namespace, flag: str) -> str:
    """The value of `flag`, or of its deprecated positional (warning on stderr); a usage error when neither
    or two different values are given."""
    dest = flag.lstrip("-").replace("-", "_")
    value, positional = getattr(args, dest), getattr(args, f"{dest}_positional")
    if positional is None:
        if value is None:
            parser.error(f"the following arguments are required: {flag}")
        return value
    if value is not None and value != positional:
        parser.error(f"two values for {flag}: {value} and the positional {positional}; give only {flag}")
    print(
        f"{parser.prog}: warning: a positional {positional} is deprecated and will stop working in the next release; "
        f"write {flag} {positional}",
        file=sys.stderr,
    )
    setattr(args, dest, positional)
    return positional
