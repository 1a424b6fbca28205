"""The command-line options with which a user allows what a model directory alone cannot.

Shared by every command that loads a model directory (infer, serve, chat, export); see
emoreason.model.trust for the rule they implement.
"""

from __future__ import annotations

import argparse

from emoreason.model.trust import UserTrust, parse_detector_args


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("code the model directory may not choose (only you can allow it)")
    group.add_argument(
        "--trust-remote-code", action="store_true",
        help="let transformers run Python code shipped with the model's checkpoints (an auto_map); "
        "only for model directories you trust",
    )
    group.add_argument(
        "--face-detector", metavar="NAME",
        help="face detector instead of the model directory's: 'haar' or package.module:ClassName "
        "(a FaceDetector subclass); a directory naming a plug-in is refused without it",
    )
    group.add_argument("--face-detector-args", metavar="JSON", help="constructor arguments for --face-detector, a JSON object")


def trust_from_args(args: argparse.Namespace) -> UserTrust:
    """ConfigError for malformed detector arguments."""
    detector_args = parse_detector_args(args.face_detector_args) if args.face_detector_args is not None else None
    return UserTrust(args.trust_remote_code, args.face_detector, detector_args)
