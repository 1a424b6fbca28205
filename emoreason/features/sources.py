"""Which media file feeds each modality of a sample, and whether that file is usable at all.

The rules are the `sources` of each row of `emoreason.constants.MODALITY_TABLE` (a separate audio file wins
over the video's track; a still image cannot feed the video encoder); a file that fails `check_file` makes
every modality it feeds a fault before anything is decoded.
"""

from __future__ import annotations

import os
from pathlib import Path

from emoreason.constants import MEDIA_KINDS, MODALITY_TABLE
from emoreason.features.results import Absence, Featurized, MediaFiles
from emoreason.media.errors import MediaError, check_file
from emoreason.schema import Sample


def sample_files(sample: Sample, data_root: str | os.PathLike) -> dict[str, Path | MediaError]:
    """The sample's media files, each confined to the data root by the rule the server applies to its media root."""
    from emoreason.media.paths import confined_path

    files: dict[str, Path | MediaError] = {}
    for kind in MEDIA_KINDS:
        relative = getattr(sample.media, kind)
        if relative is None:
            continue
        try:
            files[kind] = confined_path(relative, data_root)
        except MediaError as exc:
            files[kind] = exc
    return files


def group_by_source(wanted: list[str], files: MediaFiles, out: Featurized) -> dict[str, list[str]]:
    """media kind -> the wanted modalities it feeds. A modality no file can feed, or whose file fails its check,
    is recorded in `out.absent` instead (a plain absence, or a fault)."""
    checked: dict[str, MediaError | None] = {}
    for kind, path in files.items():
        try:
            if isinstance(path, MediaError):
                raise path
            check_file(path)
            checked[kind] = None
        except MediaError as exc:
            checked[kind] = exc
    by_source: dict[str, list[str]] = {}
    for m in wanted:
        spec = next(s for s in MODALITY_TABLE if s.name == m)
        kind = next((k for k in spec.sources if k in files), None)
        if kind is None:
            out.absent[m] = Absence(m, spec.absent_reason, spec.lacks_message(set(files)), fault=False)
        elif checked[kind] is not None:
            out.absent[m] = Absence.from_error(m, checked[kind], file_checked=False)
        else:
            by_source.setdefault(kind, []).append(m)
    return by_source
