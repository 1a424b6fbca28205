"""The prep report: counts, throughput, and every failed or partial sample with its reasons."""

from __future__ import annotations

import collections
import dataclasses
import datetime
from pathlib import Path
from typing import Any

from emoreason.atomic import write_json_atomic
from emoreason.media.errors import REASONS
from emoreason.schema import SchemaError


@dataclasses.dataclass
class PrepReport:
    input: str
    output_dir: str
    config: dict[str, Any]
    total: int
    already_done: int
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {"ok": 0, "partial": 0, "failed": 0})
    problems: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    frames_decoded: int = 0
    completion_times: list[float] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    started_at: str = ""

    @classmethod
    def start(cls, input: str, output_dir: str, config: dict[str, Any], total: int, already_done: int) -> "PrepReport":
        return cls(input, output_dir, config, total, already_done, started_at=datetime.datetime.now(datetime.timezone.utc).isoformat())

    def add_input_errors(self, errors: list[SchemaError]) -> None:
        for err in errors:
            self.counts["failed"] += 1
            self.problems.append(
                {"id": None, "line": err.line, "status": "failed", "issues": [{"modality": "*", "reason": "bad_field", "message": str(err)}]}
            )

    def add_previous(self, status: dict[str, Any]) -> None:
        self.counts[status["status"]] += 1
        if status["issues"]:
            self.problems.append(status)

    def add_result(self, result, elapsed: float) -> None:
        self.counts[result.status] += 1
        self.frames_decoded += result.frames_decoded
        self.completion_times.append(elapsed)
        if result.issues:
            self.problems.append(result.to_status_json())

    def finish(self, elapsed: float) -> None:
        self.elapsed_s = elapsed

    def processed(self) -> int:
        return len(self.completion_times)

    def reason_counts(self) -> dict[str, int]:
        counter = collections.Counter(i["reason"] for p in self.problems for i in p["issues"])
        return dict(sorted(counter.items()))

    def throughput(self) -> dict[str, float]:
        n = self.processed()
        out = {
            "clips_per_s": n / self.elapsed_s if self.elapsed_s else 0.0,
            "frames_per_s": self.frames_decoded / self.elapsed_s if self.elapsed_s else 0.0,
        }
        if n >= 3:
            # Excluding start-up (worker spawn, encoder loading): from the first completion to the last.
            span = self.completion_times[-1] - self.completion_times[0]
            out["steady_clips_per_s"] = (n - 1) / span if span > 0 else 0.0
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output_dir": self.output_dir,
            "started_at": self.started_at,
            "total": self.total,
            "already_done": self.already_done,
            "processed_now": self.processed(),
            "counts": self.counts,
            "reasons": {k: {"count": v, "meaning": REASONS.get(k, k)} for k, v in self.reason_counts().items()},
            "elapsed_s": round(self.elapsed_s, 3),
            **{k: round(v, 3) for k, v in self.throughput().items()},
            "problems": self.problems,
            "config": self.config,
        }

    def write(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())

    def summary(self) -> str:
        t = self.throughput()
        lines = [
            f"prep: {self.total} samples ({self.already_done} already done): "
            f"{self.counts['ok']} ok, {self.counts['partial']} partial, {self.counts['failed']} failed"
            f" in {self.elapsed_s:.1f}s ({t['clips_per_s']:.2f} clips/s, {t['frames_per_s']:.1f} frames/s)"
        ]
        for p in self.problems:
            who = p["id"] if p["id"] is not None else f"line {p.get('line')}"
            for issue in p["issues"]:
                lines.append(f"  [{p['status']}] {who} {issue['modality']}: {issue['reason']} - {issue['message']}")
        return "\n".join(lines)
