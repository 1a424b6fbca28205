"""The one rule for media paths under a root folder, shared by the server (media root) and prep (data root).

A path is taken literally and relative to the root: absolute paths, `..` components and symlinks
(of the file or any folder on the way) that resolve outside the root are refused, so a sample
list or a request can never make us read /etc/passwd or another user's files. The root itself may
be a symlink: it is resolved first.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from emoreason.media.errors import MediaError


def confined_path(relative: str, root: str | os.PathLike, root_name: str = "data root") -> Path:
    """`root / relative`, resolved, or MediaError: `outside_root` when it leaves the root, `bad_field`
    for a path that cannot name a file under it (empty, NUL bytes, a symlink loop)."""
    if not relative or "\x00" in relative:
        raise MediaError("bad_field", None, f"media path must be a non-empty string without NUL bytes, got {relative[:100]!r}")
    posix = PurePosixPath(relative)
    if posix.is_absolute() or ".." in posix.parts:
        raise MediaError("outside_root", relative[:200], f"media paths must be relative to the {root_name}, without '..'")
    base = Path(root).resolve()
    try:
        resolved = (base / posix).resolve()
    except (OSError, RuntimeError):  # a name too long, a symlink loop
        raise MediaError("bad_field", relative[:200], f"cannot resolve this path under the {root_name}") from None
    if not resolved.is_relative_to(base):
        raise MediaError("outside_root", relative[:200], f"resolves outside the {root_name} (a symlink leaving it?)")
    return resolved
