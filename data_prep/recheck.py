"""Before a prep re-run skips its finished samples, verify the feature files they reference.

A finished sample is one with a line in samples.jsonl. Its features were verified when written, but a
file can be damaged since (a disk fault, a stray write, an interrupted copy). Samples that reference a
damaged file lose their lines in samples.jsonl and status.jsonl, so the run redoes them, and the
extractor, which verifies every cache entry it reuses, recomputes the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from emoreason.atomic import write_text_atomic
from emoreason.features.cache import BadFeatureFile, check_feature_refs
from emoreason.jsonl import read_complete_records
from emoreason.schema import FeatureRef


def _feature_refs(records: list[dict]):
    for record in records:
        for modality, ref in (record.get("features") or {}).items():
            yield record["id"], modality, FeatureRef.model_validate(ref)


def _rewrite_without(path: Path, records: list[dict], drop: set[str]) -> None:
    kept = [r for r in records if r.get("id") not in drop]
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def drop_damaged_samples(samples_path: str | Path, status_path: str | Path) -> list[BadFeatureFile]:
    """Remove finished samples whose feature files fail verification; return the damaged files (reported on stderr)."""
    samples_path, status_path = Path(samples_path), Path(status_path)
    records = read_complete_records(samples_path)
    bad = check_feature_refs(_feature_refs(records), samples_path.parent)
    if not bad:
        return []
    drop = {sample_id for entry in bad for sample_id, _ in entry.refs}
    print(f"prep: {len(bad)} cached feature file(s) of finished samples are damaged; redoing {len(drop)} sample(s):", file=sys.stderr)
    for entry in bad[:20]:
        print(f"  {entry.describe()}", file=sys.stderr)
    _rewrite_without(samples_path, records, drop)
    if status_path.exists():
        _rewrite_without(status_path, read_complete_records(status_path), drop)
    return bad
