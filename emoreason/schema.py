"""The sample schema: one JSON object per line, validated on load.

Every stage reads and writes this shape (documented in docs/schema.md). A bad record raises
`SchemaError` naming the file, the line, the field and what was expected, e.g.

    data/train.jsonl:12: field 'targets.valence': expected a number, got 'high'
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emoreason.action_units import is_au_code
from emoreason.constants import MODALITIES, NUM_LANDMARKS
from emoreason.jsonl import iter_json_lines

SCHEMA_VERSION = "1"

L = TypeVar("L")  # where a record sits: a line number, an annotation file's Location

# Literal over a tuple expands to its members: the schema's modality names come from the one table.
Modality = Literal[MODALITIES]
ClueSource = Literal[(*MODALITIES, "text")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _relative_media_path(value: str | None) -> str | None:
    if value is None:
        return value
    if not value.strip():
        raise ValueError("expected a non-empty path relative to the data root")
    p = PurePosixPath(value.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"expected a path relative to the data root without '..', got {value!r}")
    return value


class Media(_Strict):
    """Media files of a sample, as paths relative to the data root."""

    video: str | None = None
    audio: str | None = None
    image: str | None = None

    _check_paths = field_validator("video", "audio", "image")(_relative_media_path)


class Targets(_Strict):
    """What a model should recognise or explain; every field is optional."""

    emotion: str | None = None
    """Discrete label from the data set's closed set, e.g. 'happy'."""
    open_vocab: list[str] | None = None
    """Open-vocabulary labels, e.g. ['joyful', 'relieved'] (MER2025 track 2, MER-Caption+)."""
    valence: float | None = None
    arousal: float | None = None
    clues: dict[ClueSource, str] | None = None
    """Per-modality clues, e.g. {'audio': 'rising pitch', 'face': 'raised lip corners'}."""
    reasoning: str | None = None

    @field_validator("valence", "arousal", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return float(value)

    @field_validator("emotion")
    @classmethod
    def _non_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a non-empty label")
        return value


class Turn(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class FeatureRef(_Strict):
    """A cached encoder output: fp16 safetensors at `path`, relative to the feature cache root."""

    path: str
    key: str
    encoder: str
    shape: list[int]


class FaceRecord(_Strict):
    """Which sampled frames had a face; frames without one are recorded, not fatal."""

    frame_times: list[float]
    """Timestamps (s) of the sampled frames."""
    missing: list[int] = Field(default_factory=list)
    """Indices into frame_times where no face was found."""


def _au_codes(codes: list[str] | None) -> list[str] | None:
    if codes is None:
        return codes
    bad = [c for c in codes if not is_au_code(c)]
    if bad:
        raise ValueError(f"expected FACS action unit codes such as 'AU04' or 'AU12', got {bad[0]!r}")
    if len(set(codes)) != len(codes):
        raise ValueError(f"expected each action unit once, got {codes!r}")
    return codes


class ActionUnits(_Strict):
    """Facial action units seen in the sample's face (FACS codes, as OpenFace reports them)."""

    codes: list[str]
    """Active action units, e.g. ['AU04', 'AU07'] (MERR's AU_list)."""
    intensities: dict[str, float] | None = None
    """Code -> intensity (OpenFace's 0-5 scale), for codes listed in `codes`."""
    peak_frame: int | None = Field(default=None, ge=0)
    """Index of the emotional peak frame in the sample's video (MERR's peak_index)."""
    peak_codes: list[str] | None = None
    """Action units active at the peak frame (MERR's peak_AU_list)."""

    _check_codes = field_validator("codes", "peak_codes")(_au_codes)

    @field_validator("intensities", mode="before")
    @classmethod
    def _finite_intensities(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected an object of code -> intensity, got {value!r}")
        for code, intensity in value.items():
            if not is_au_code(code):
                raise ValueError(f"expected FACS action unit codes such as 'AU04' as keys, got {code!r}")
            if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not math.isfinite(intensity) \
                    or intensity < 0:
                raise ValueError(f"expected a finite intensity >= 0 for {code}, got {intensity!r}")
        return {code: float(intensity) for code, intensity in value.items()}

    @model_validator(mode="after")
    def _intensities_of_listed_codes(self) -> ActionUnits:
        extra = sorted(set(self.intensities or {}) - set(self.codes))
        if extra:
            raise ValueError(f"intensities for {extra}, which are not in codes {self.codes}")
        return self


class Landmarks(_Strict):
    """The main face's 68 facial points (iBUG layout) in every frame of the sample's video, or in its image."""

    points: list[list[list[float]]]
    """[frames][68][x, y], frame i of the video first to last; any consistent unit (pixels, or [0, 1] of the
    frame): the landmark encoder centres each frame's points and scales them to unit RMS radius."""
    fps: float | None = Field(default=None, gt=0)
    """Frame rate of the annotated frames, needed only when features sample frames by `media.video.fps`."""

    @field_validator("points", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError(f"expected a non-empty list of frames, each {NUM_LANDMARKS} [x, y] points")
        for f, frame in enumerate(value):
            if not isinstance(frame, list) or len(frame) != NUM_LANDMARKS:
                size = len(frame) if isinstance(frame, list) else type(frame).__name__
                raise ValueError(f"frame {f}: expected {NUM_LANDMARKS} [x, y] points, got {size}")
            for p, point in enumerate(frame):
                if not (isinstance(point, list) and len(point) == 2 and all(
                        isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in point)):
                    raise ValueError(f"frame {f}, point {p}: expected [x, y] finite numbers, got {point!r}")
        return [[[float(c) for c in point] for point in frame] for frame in value]


class Sample(_Strict):
    id: str = Field(min_length=1)
    media: Media = Field(default_factory=Media)
    subtitle: str | None = None
    """Subtitle or ASR transcript."""
    targets: Targets | None = None
    conversations: list[Turn] | None = None
    features: dict[Modality, FeatureRef] = Field(default_factory=dict)
    faces: FaceRecord | None = None
    action_units: ActionUnits | None = None
    """Facial action units annotated for the sample (codes, optional intensities and peak frame)."""
    landmarks: Landmarks | None = None
    """Facial landmarks annotated per frame (68 points each), read by the "landmarks:annotation" encoder."""
    data_root: str | None = None
    """Absolute folder the media paths are relative to; prep records the one it read, so the sample file
    can be copied or rewritten anywhere. A run's own --data-root overrides it."""
    source: dict[str, Any] = Field(default_factory=dict)
    """Free-form provenance: data set name, original ids, split."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"id": self.id}

    def media_root(self, override: str | os.PathLike | None, fallback: str | os.PathLike) -> Path:
        """The folder this sample's media paths are relative to: the run's override, else the recorded
        data_root, else `fallback` (the samples file's folder)."""
        return Path(override or self.data_root or fallback)

    def media_path(self, kind: str, data_root: str | os.PathLike) -> Path | None:
        rel = getattr(self.media, kind)
        return None if rel is None else Path(data_root) / rel


class SchemaError(ValueError):
    """A record that does not match the schema, located by file, line and field."""

    def __init__(self, file: str | os.PathLike, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: field '{field}': {message}")


_EXPECTED = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not in the schema, see docs/schema.md)",
}


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    field = ".".join(str(p) for p in error["loc"] if p != "[key]") or "<record>"
    kind = error["type"]
    if kind == "value_error":
        message = str(error["ctx"]["error"])
    elif kind == "literal_error":
        message = f"expected one of {error['ctx']['expected']}, got {error['input']!r}"
    elif kind in _EXPECTED:
        message = _EXPECTED[kind]
        if kind not in ("missing", "extra_forbidden"):
            message += f", got {error['input']!r}"
    else:
        message = f"{error['msg']}, got {error['input']!r}"
    return field, message


def parse_sample(record: Any, file: str | os.PathLike = "<memory>", line: int | None = None) -> Sample:
    if not isinstance(record, dict):
        raise SchemaError(file, line, "<record>", f"expected a JSON object, got {type(record).__name__}")
    try:
        return Sample.model_validate(record)
    except ValidationError as exc:
        field, message = _describe(exc.errors()[0])
        raise SchemaError(file, line, field, message) from None


def parse_line(text: str, file: str | os.PathLike, line: int) -> Sample:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(file, line, "<record>", f"expected one JSON object per line: {exc.msg}") from None
    return parse_sample(record, file, line)


def unique_samples(
    located: Iterable[tuple[L, Sample | SchemaError]],
    duplicate: Callable[[str, L, L], SchemaError],
    errors: list[SchemaError] | None,
) -> Iterator[Sample]:
    """The samples of located records, each id once: the one rule of every sample reader.

    A record comes as its sample or as the SchemaError it raised; a repeated id becomes
    `duplicate(id, where, first_where)`. With `errors=None` the first error raises; with a list,
    errors are appended to it and their records skipped, so batch work reports them and carries on.
    """
    seen: dict[str, L] = {}
    for where, sample in located:
        if isinstance(sample, Sample) and sample.id in seen:
            sample = duplicate(sample.id, where, seen[sample.id])
        if isinstance(sample, SchemaError):
            if errors is None:
                raise sample
            errors.append(sample)
            continue
        seen[sample.id] = where
        yield sample


def sample_or_error(build: Callable[..., Sample], *args: Any) -> Sample | SchemaError:
    """`build(*args)`, or the SchemaError it raised: a located record as `unique_samples` takes it."""
    try:
        return build(*args)
    except SchemaError as exc:
        return exc


def iter_samples(path: str | os.PathLike, errors: list[SchemaError] | None = None) -> Iterator[Sample]:
    """Validated samples of a JSONL file.

    With `errors=None` the first bad record raises. With a list, bad records (and repeated ids)
    are appended to it and skipped, so batch work reports them and carries on.
    """
    located = ((lineno, sample_or_error(parse_line, text, path, lineno)) for lineno, text in iter_json_lines(path))

    def duplicate(sample_id: str, lineno: int, first: int) -> SchemaError:
        return SchemaError(path, lineno, "id", f"expected a unique id, {sample_id!r} already on line {first}")

    yield from unique_samples(located, duplicate, errors)


def emotion_labels(samples: Iterable[Sample]) -> list[str]:
    """The label set the samples name in `targets.emotion`, sorted: a closed set's candidates when none are given."""
    return sorted({s.targets.emotion for s in samples if s.targets and s.targets.emotion})


def load_samples(path: str | os.PathLike) -> list[Sample]:
    """All samples of a JSONL file; the first bad record raises `SchemaError`."""
    if not Path(path).exists():
        raise FileNotFoundError(f"sample file not found: {path}")
    return list(iter_samples(path))


def write_samples(path: str | os.PathLike, samples: list[Sample], refs_from: str | os.PathLike | None = None) -> None:
    """Write samples atomically. refs_from: the folder their feature references are relative to now (the
    file they were read from); the references are rewritten relative to `path`'s folder, so a sample file
    written anywhere still finds its cached features."""
    from emoreason.atomic import write_text_atomic

    if refs_from is not None:
        samples = [rebase_feature_refs(s, refs_from, Path(path).parent) for s in samples]
    write_text_atomic(path, "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in samples))


def rebase_feature_refs(sample: Sample, old_dir: str | os.PathLike, new_dir: str | os.PathLike) -> Sample:
    if not sample.features or Path(old_dir).resolve() == Path(new_dir).resolve():
        return sample
    moved = {
        m: ref.model_copy(update={"path": Path(os.path.relpath(Path(old_dir).resolve() / ref.path, Path(new_dir).resolve())).as_posix()})
        for m, ref in sample.features.items()
    }
    return sample.model_copy(update={"features": moved})


