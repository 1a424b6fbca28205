"""`emoreason prep` over a whole input: worker processes, progress, resume, and the report.

Resume contract: samples.jsonl only ever gains complete lines (flushed and fsynced one by one),
feature files are written atomically, so after a kill a re-run skips the ids already in
samples.jsonl and redoes the rest; nothing is lost or duplicated. A finished sample whose feature
files no longer verify (data_prep/recheck.py) is redone too, and so is one whose line was garbled
(reported by file and line, and removed).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from emoreason.config import ConfigError, config_to_dict
from emoreason.data_prep.extract import SampleExtractor, SampleResult
from emoreason.data_prep.manifest import read_prep_input
from emoreason.data_prep.prep_config import PrepConfig
from emoreason.data_prep.recheck import drop_damaged_samples
from emoreason.data_prep.report import PrepReport
from emoreason.features.contract import FeaturizerSettings, check_agreement, read_contract, write_contract
from emoreason.features.featurizer import Absence, EncoderLoadError
from emoreason.jsonl import JsonlAppender, drop_bad_lines, read_complete_records
from emoreason.parent_watch import exit_with, process_identity
from emoreason.progress import show_progress
from emoreason.schema import Sample, SchemaError

SAMPLES_FILE = "samples.jsonl"
STATUS_FILE = "status.jsonl"
REPORT_FILE = "report.json"

_worker_extractor: SampleExtractor | None = None


def _set_threads(cfg: PrepConfig) -> None:
    # By default each worker gets its share of the cores; more threads than cores only adds contention.
    import cv2
    import torch

    threads = cfg.threads_per_worker or max(1, (os.cpu_count() or 1) // cfg.workers)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def _worker_init(cfg: PrepConfig, samples_dir: str, data_root: str, owner: tuple[int, str | None]) -> None:
    global _worker_extractor
    exit_with(owner)  # a SIGKILLed prep (the OOM killer) must not leave its workers idling
    _set_threads(cfg)
    _worker_extractor = SampleExtractor(cfg, samples_dir, data_root)


def _worker_process(sample_json: dict[str, Any]) -> SampleResult:
    return _safe_process(_worker_extractor, Sample.model_validate(sample_json))


def _safe_process(extractor: SampleExtractor, sample: Sample) -> SampleResult:
    try:
        return extractor.process(sample)
    except EncoderLoadError:
        raise  # a broken encoder is the setup's fault, not this clip's: it stops the run
    except Exception as exc:  # one bad clip must never stop the batch
        return SampleResult.crashed(sample.id, exc)


def resolve_paths(cfg: PrepConfig) -> tuple[Path, Path]:
    out_dir = Path(cfg.output_dir)
    data_root = Path(cfg.data_root) if cfg.data_root else Path(cfg.input).resolve().parent
    return out_dir, data_root


def _run_in_process(cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path) -> Iterator[SampleResult]:
    _set_threads(cfg)
    extractor = SampleExtractor(cfg, out_dir, data_root)
    for sample in pending:
        yield _safe_process(extractor, sample)


def _run_in_pool(cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path) -> Iterator[SampleResult]:
    # forkserver, not fork: forking a process whose torch/OpenCV thread pools are running can deadlock.
    # The server imports the heavy modules once, so each worker starts as a cheap fork of it.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["emoreason.data_prep.extract"])
    queue = list(reversed(pending))
    owner = process_identity(os.getpid())
    crashes: dict[str, int] = {}
    while queue:
        with cf.ProcessPoolExecutor(cfg.workers, ctx, _worker_init, (cfg, str(out_dir), str(data_root), owner)) as pool:
            in_flight: dict[cf.Future, Sample] = {}
            completed = 0
            try:
                while queue or in_flight:
                    # A bounded window keeps memory flat on 100k-sample inputs.
                    while queue and len(in_flight) < cfg.workers * 4:
                        sample = queue.pop()
                        in_flight[pool.submit(_worker_process, sample.to_json())] = sample
                    done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        sample = in_flight.pop(future)
                        result = future.result()
                        completed += 1
                        yield result
            except cf.process.BrokenProcessPool:
                if not completed:
                    raise RuntimeError(
                        "prep worker processes died before finishing any sample. If you call run_prep from "
                        "a script, put the call under `if __name__ == '__main__':` (workers re-import the "
                        "main module), or set workers=1."
                    ) from None
                # A decoder crashed a worker; we cannot tell which sample did it, so each
                # in-flight sample gets one more try and fails after its second crash.
                for sample in in_flight.values():
                    crashes[sample.id] = crashes.get(sample.id, 0) + 1
                    if crashes[sample.id] >= 2:
                        yield SampleResult(sample.id, "failed", [Absence("*", "unreadable", "a worker crashed while decoding this sample")])
                    else:
                        queue.append(sample)


def preflight(cfg: PrepConfig, out_dir: Path, data_root: Path, first: Sample) -> None:
    """Load every encoder and the face detector and run them on one sample before the batch.

    A missing checkpoint or an offline hub id then stops prep at once with one message naming the
    encoder, instead of failing every clip as "unreadable" after minutes of work. The sample's
    features land in the cache, so the batch reuses them.
    """
    extractor = SampleExtractor(cfg, out_dir, data_root)
    try:
        extractor.featurizer.load_all()
        extractor.process(first)
    except EncoderLoadError as exc:
        raise ConfigError(f"{exc}; fix it before prep runs any clip") from None


def claim_output_dir(cfg: PrepConfig, out_dir: Path) -> None:
    """Write the featurizer contract, or refuse a re-run whose settings differ from the earlier run's.

    Features of both settings in one samples.jsonl would train a model on a mix it is never served.
    """
    settings = FeaturizerSettings(cfg.encoders, cfg.media)
    earlier = read_contract(out_dir / SAMPLES_FILE)
    if earlier is not None and (out_dir / SAMPLES_FILE).exists():
        try:
            check_agreement(settings, earlier, sorted(cfg.encoders), prefix="")
        except ConfigError as exc:
            raise ConfigError(f"{out_dir} holds features prepped with other settings: {exc}. "
                              "Prep into a new output_dir (the feature cache can be shared).") from None
        for modality in earlier.settings.encoders:
            if modality not in cfg.encoders:
                raise ConfigError(f"{out_dir} was prepped with a {modality} encoder this config lacks; prep into a new output_dir")
    write_contract(out_dir, settings)


def run_prep(cfg: PrepConfig) -> PrepReport:
    out_dir, data_root = resolve_paths(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    claim_output_dir(cfg, out_dir)
    input_errors: list[SchemaError] = []
    samples = read_prep_input(cfg.input, input_errors)

    # Finished samples whose feature files are damaged lose their lines here, so this run redoes them.
    # A garbled line (a bad disk block, a hand edit) names no trustworthy id: drop it, and its sample is redone.
    for name in (SAMPLES_FILE, STATUS_FILE):
        for problem in drop_bad_lines(out_dir / name, required=("id",)):
            print(f"prep: {problem}; removed it", file=sys.stderr)
    drop_damaged_samples(out_dir / SAMPLES_FILE, out_dir / STATUS_FILE)
    done_ids = {r["id"] for r in read_complete_records(out_dir / SAMPLES_FILE)}
    previous = {r["id"]: r for r in read_complete_records(out_dir / STATUS_FILE)}
    pending = [s for s in samples if s.id not in done_ids]

    total = len(samples) + len(input_errors)
    report = PrepReport.start(cfg.input, str(out_dir), config_to_dict(cfg), total, len(samples) - len(pending))
    report.add_input_errors(input_errors)
    for sample_id in done_ids & {s.id for s in samples}:
        report.add_previous(previous.get(sample_id, {"id": sample_id, "status": "ok", "issues": []}))

    if pending:
        preflight(cfg, out_dir, data_root, pending[0])
    started = time.perf_counter()
    if cfg.engine == "ray":
        from emoreason.data_prep.ray_prep import run_in_ray as run
    else:
        run = _run_in_process if cfg.workers == 1 else _run_in_pool
    with JsonlAppender(out_dir / SAMPLES_FILE) as samples_out, JsonlAppender(out_dir / STATUS_FILE) as status_out:
        bar = tqdm(total=len(pending), desc="prep", unit="clip", disable=not (cfg.progress and show_progress()))
        for result in run(cfg, pending, out_dir, data_root):
            if result.sample is not None:
                samples_out.write(result.sample.to_json())
            status_out.write(result.to_status_json())
            report.add_result(result, time.perf_counter() - started)
            bar.update(1)
            bar.set_postfix(failed=report.counts["failed"], partial=report.counts["partial"])
        bar.close()
    report.finish(time.perf_counter() - started)
    report.write(out_dir / REPORT_FILE)
    return report
