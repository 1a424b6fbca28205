"""`emoreason infer`: batch predictions over a schema JSONL, resumable, one line per sample.

    emoreason infer --model runs/mer/export --input data/test.jsonl --out runs/mer/predictions.jsonl

Each output line is one of
    {"id": ..., "text": answer, "label": parsed label or null}             (plus "valence": number when the
                                                                            answer states one, and "absent":
                                                                            {modality: reason} when the media
                                                                            lacked a modality)
    {"id": ..., "error": {"reason": ..., "message": ...}}                  a sample that could not be run

The prompt is the sample's conversation up to its last user turn or, for a sample without one,
a recognition prompt listing the labels (default: every targets.emotion in the input, sorted).
Killed? Run the same command again: samples with a line in --out (predictions and errors alike)
are skipped, and a torn last line is cut, so nothing is lost or written twice. A garbled line
elsewhere is reported by file and line and removed (the good lines stay), and its sample is
predicted again. To retry failed samples, delete their error lines first.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from emoreason.cli_args import HelpFormatter
from emoreason.config import ConfigError
from emoreason.constants import MEDIA_KINDS, PLACEHOLDER_TOKENS
from emoreason.jsonl import JsonlAppender, drop_bad_lines, read_complete_records
from emoreason.labels import RECOGNITION_PROMPT, extract_label, extract_valence
from emoreason.media.errors import MediaError
from emoreason.model.trust import UserTrust
from emoreason.progress import show_progress
from emoreason.schema import Sample, SchemaError, emotion_labels, iter_samples
from emoreason.serving.backends import BACKENDS, BackendError, load_engine
from emoreason.serving.engine import BatchInferenceEngine, GenerationRequest, MediaInput
from emoreason.serving.trust_options import add_trust_arguments, trust_from_args

if TYPE_CHECKING:  # the model stack (torch, transformers) is imported only once there are samples to run
    from emoreason.serving.engine import PreparedRequest


class SetupError(Exception):
    """The job cannot start (backend missing, labels unknown); no sample is at fault."""


# The wording `emoreason instruct --task recognition` trains with (data_prep/instructions/templates.yaml).
SUBTITLE_LINE = 'The subtitle reads: "{subtitle}"'


def default_prompt(sample: Sample, labels: Sequence[str], modalities: Sequence[str]) -> str:
    """Placeholders, subtitle, question: the layout of the recognition instructions.

    Placeholders of modalities the sample turns out to lack are dropped by the processor.
    """
    lines = [" ".join(PLACEHOLDER_TOKENS[m] for m in modalities)] if modalities else []
    if sample.subtitle:
        lines.append(SUBTITLE_LINE.format(subtitle=sample.subtitle.strip()))
    lines.append(RECOGNITION_PROMPT.format(labels=", ".join(labels)))
    return "\n".join(lines)


def sample_request(
    sample: Sample, labels: Sequence[str], modalities: Sequence[str], data_root: Path | None, max_tokens: int,
    fallback_root: Path = Path("."),
) -> GenerationRequest:
    """A greedy request for the sample; its media resolved against data_root (the run's --data-root), else the
    data root prep recorded in the sample, else fallback_root (the input file's folder)."""
    from emoreason.model.generation import prompt_turns
    from emoreason.model.prompt_template import sample_prompt_fields

    fields = sample_prompt_fields(sample)
    if sample.conversations:
        messages = [{"role": t.role, "content": t.content} for t in prompt_turns(sample.conversations)]
    else:
        messages = [{"role": "user", "content": default_prompt(sample, labels, modalities)}]
        # The line default_prompt wrote, which a recipe's {subtitle} slot replaces (as for instruct's prompts).
        fields["subtitle_line"] = SUBTITLE_LINE.format(subtitle=sample.subtitle.strip()) if sample.subtitle else None
    root = sample.media_root(data_root, fallback_root)
    media = [MediaInput(kind, sample.media_path(kind, root)) for kind in MEDIA_KINDS if getattr(sample.media, kind)]
    return GenerationRequest(messages=messages, media=media, max_tokens=max_tokens, temperature=0.0,
                             prompt_fields=fields, landmarks=sample.landmarks)


def prepare_sample(
    engine: BatchInferenceEngine, sample: Sample, request: GenerationRequest, feature_source: str, samples_dir: Path
) -> PreparedRequest:
    from emoreason.model.features import cached_features
    from emoreason.serving.requests import prepare_with_features

    if feature_source == "live":
        return engine.prepare(request)
    start = time.perf_counter()
    # The encoders the model trained (a LoRA-tuned one, or its export's merge) have no cached features: prep
    # skips them, since their features change with training. They are computed from the sample's media.
    live = list(getattr(engine, "trained_encoder_modalities", []))
    features = cached_features(sample, samples_dir, [m for m in engine.modalities if m not in live])
    absent = {m: "not_cached" for m in engine.modalities if m not in features and m not in live}
    if not live:
        return prepare_with_features(request, features, engine.processor, absent, time.perf_counter() - start)
    prepared = engine.prepare(request, cached=features)
    prepared.absent.update(absent)
    prepared.media_seconds = time.perf_counter() - start
    return prepared


def error_record(sample_id: str, exc: Exception) -> dict:
    if isinstance(exc, MediaError):
        return {"id": sample_id, "error": exc.to_json()}
    reason = "missing_feature" if isinstance(exc, FileNotFoundError) else "bad_request"
    return {"id": sample_id, "error": {"reason": reason, "message": str(exc)}}


def load_batch_engine(
    backend: str, model_dir: str, device: str, batch_size: int, trust: UserTrust | None = None
) -> BatchInferenceEngine:
    try:
        engine = load_engine(backend, model_dir, device=device, max_batch_size=batch_size, trust=trust)
    except BackendError as exc:
        raise SetupError(str(exc)) from None
    if not isinstance(engine, BatchInferenceEngine):
        raise SetupError(f"the {backend} engine has no prepare/generate_prepared; `emoreason infer` needs both")
    return engine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason infer", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (an export, or a trained model)")
    parser.add_argument("--input", required=True, help="schema JSONL of samples, or registry:NAME (the dataset registry)")
    parser.add_argument("--out", required=True, help="predictions JSONL (appended to; existing ids are skipped)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="hf", help="inference backend (default hf; vllm for throughput)")
    parser.add_argument("--device", default="cpu", help="torch device of the LLM (default cpu)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples generated together")
    parser.add_argument("--max-tokens", type=int, default=64, help="longest answer, in tokens")
    parser.add_argument("--labels", help="comma-separated label set (default: every targets.emotion in --input)")
    parser.add_argument("--data-root", help="folder the media paths are relative to (default: the data root prep recorded in each sample, else the input's folder)")
    parser.add_argument(
        "--feature-source", choices=("live", "cache"), default="live",
        help="live: decode media and run the encoders now; cache: the features `emoreason prep` stored",
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: one engine in this process; ray: --replicas engines on a Ray cluster (the ray extra, docs/scale_out.md)")
    parser.add_argument("--replicas", type=int, default=1, help="engine replicas with --engine ray (one GPU each when --device is a GPU)")
    parser.add_argument("--ray-address", help='Ray cluster to join with --engine ray: "auto", HOST:PORT, or unset: $RAY_ADDRESS, else a Ray instance started here')
    add_trust_arguments(parser)
    return parser


def read_input(path: Path) -> list[Sample]:
    """Valid samples; bad records are reported on stderr and skipped (they have no trustworthy id)."""
    errors: list[SchemaError] = []
    samples = list(iter_samples(path, errors))
    for exc in errors:
        print(f"emoreason infer: skipped {exc}", file=sys.stderr)
    return samples


def predict_chunk(
    engine: BatchInferenceEngine,
    chunk: Sequence[Sample],
    labels: Sequence[str],
    *,
    data_root: Path | None,
    samples_dir: Path,
    feature_source: str,
    max_tokens: int,
) -> list[dict]:
    """Output records for a chunk: an error record per sample that cannot run, a prediction per other."""
    records: list[dict] = []
    ready: list[tuple[Sample, PreparedRequest]] = []
    for sample in chunk:
        request = sample_request(sample, labels, engine.modalities, data_root, max_tokens, fallback_root=samples_dir)
        try:
            ready.append((sample, prepare_sample(engine, sample, request, feature_source, samples_dir)))
        except (MediaError, ValueError, FileNotFoundError) as exc:  # this sample's fault alone
            records.append(error_record(sample.id, exc))
    completions = engine.generate_prepared([prepared for _, prepared in ready]) if ready else []
    for (sample, prepared), completion in zip(ready, completions):
        text = completion.text.strip()
        record = {"id": sample.id, "text": text, "label": extract_label(text, labels)}
        if (valence := extract_valence(text)) is not None:  # answers of the recognition-valence task
            record["valence"] = valence
        records.append(record | ({"absent": prepared.absent} if prepared.absent else {}))
    return records


def run(args: argparse.Namespace) -> dict[str, int]:
    from emoreason.dataset_registry import resolve_path

    path, entry = resolve_path(args.input, "--input")
    input_path = Path(path)
    samples = read_input(input_path)
    if args.labels:
        labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    else:
        labels = emotion_labels(samples)
    if not labels and any(not s.conversations for s in samples):
        raise SetupError("samples without conversations get a recognition prompt listing the labels: pass --labels a,b,c")
    # Else the registry entry's, else each sample's recorded root, else the input's folder.
    data_root = Path(args.data_root) if args.data_root else (entry.data_root if entry is not None else None)
    counts = {"predicted": 0, "failed": 0, "skipped": 0}
    # A garbled line (a bad disk block, a hand edit) names no trustworthy id: drop it and redo its sample.
    for problem in drop_bad_lines(args.out, required=("id",)):
        print(f"emoreason infer: {problem}; removed it, its sample is predicted again", file=sys.stderr)
    with JsonlAppender(args.out) as out:  # opening cuts a torn last line first
        done = {record["id"] for record in read_complete_records(args.out, required=("id",))}
        todo = [s for s in samples if s.id not in done]
        counts["skipped"] = len(samples) - len(todo)
        if not todo:
            return counts
        with tqdm(total=len(todo), unit="sample", desc="infer", disable=not show_progress()) as progress:
            for records in _predict(args, todo, labels, data_root, input_path.parent):
                for record in records:
                    out.write(record)
                    counts["failed" if "error" in record else "predicted"] += 1
                progress.update(len(records))
    return counts


def _predict(args: argparse.Namespace, todo: list[Sample], labels: Sequence[str], data_root: Path | None,
             samples_dir: Path) -> Iterator[list[dict]]:
    """Each chunk's records, in order: in this process, or on --replicas Ray actors."""
    if args.engine == "ray":
        from emoreason.serving.ray_infer import infer_options, predict_on_ray

        yield from predict_on_ray(todo, infer_options(args, labels, data_root, samples_dir), args.replicas, args.ray_address)
        return
    engine = load_batch_engine(args.backend, args.model, args.device, args.batch_size, trust_from_args(args))
    for start in range(0, len(todo), args.batch_size):
        yield predict_chunk(engine, todo[start : start + args.batch_size], labels, data_root=data_root,
                            samples_dir=samples_dir, feature_source=args.feature_source, max_tokens=args.max_tokens)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.max_tokens < 1 or args.replicas < 1:
        print("emoreason infer: --batch-size, --max-tokens and --replicas must be >= 1", file=sys.stderr)
        return 2
    try:
        counts = run(args)
    except (SetupError, FileNotFoundError, ConfigError) as exc:  # ConfigError: a refused or invalid model directory
        print(f"emoreason infer: {exc}", file=sys.stderr)
        return 2
    print(f"{counts['predicted']} predicted, {counts['failed']} failed (error lines), {counts['skipped']} already in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
