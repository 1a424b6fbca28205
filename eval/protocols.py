"""Benchmark protocols by name: which official scorer `emoreason eval --protocol NAME` reproduces.

| name | scores | needs |
|---|---|---|
| `emoreason` | the offline metrics only (default) | |
| `mer2025-track2`, `mer-unibench-ov` | EW five-wheel open-vocabulary F, level 1/2 and their mean | official wheel folder, `targets.open_vocab` |
| `mer-unibench-hitrate` | hit rate of discrete labels over the five wheels | official wheel folder, `targets.emotion` |
| `mer-unibench-sentiment` | polarity of the open labels, weighted F1 and accuracy on non-zero references | `targets.valence` (the sentiment score) |
| `mer2024-ov` | judge synonym grouping, set accuracy / recall and their mean | a judge, `targets.open_vocab` |
| `dfew-5fold`, `mafw-5fold` | UAR / WAR per fold and their mean | `source.fold` on each reference |

Each result carries `protocol` and `protocol_version`; wheel-based ones carry the wheel files' sha256.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from emoreason.eval.predictions import Aligned

PROTOCOL_VERSION = "1"
PROTOCOLS = (
    "emoreason", "mer2025-track2", "mer-unibench-ov", "mer-unibench-hitrate", "mer-unibench-sentiment",
    "mer2024-ov", "dfew-5fold", "mafw-5fold",
)
WHEEL_PROTOCOLS = {"mer2025-track2", "mer-unibench-ov", "mer-unibench-hitrate"}


def protocol_results(
    name: str,
    aligned: Aligned,
    labels: Sequence[str],
    open_labels: Sequence[Sequence[str]],
    wheel,
    judge: Callable[[], object] | None,
    sentiment_mode: str = "lexicon",
    predicted_labels: Sequence[str | None] | None = None,
) -> dict | None:
    """The protocol's scores; `open_labels[i]` are sample i's predicted open labels (already extracted),
    `judge()` makes a judge on the MER-UniBench prompts, `predicted_labels` are the discrete labels."""
    from emoreason.eval.official_wheels import OfficialWheels

    if name == "emoreason":
        return None
    if name in WHEEL_PROTOCOLS and not isinstance(wheel, OfficialWheels):
        raise ValueError(f"--protocol {name} needs the official emotion_wheel/ folder as --wheel (format.csv, synonym.xlsx, wheel1..5.xlsx)")
    samples = aligned.samples
    if name in ("mer2025-track2", "mer-unibench-ov"):
        from emoreason.eval.wheel_protocols import ew_scores

        kept = [i for i, s in enumerate(samples) if s.targets and s.targets.open_vocab]
        _need(kept, name, "targets.open_vocab")
        result = ew_scores(wheel, [samples[i].targets.open_vocab for i in kept], [open_labels[i] for i in kept], protocol=name).to_json()
    elif name == "mer-unibench-hitrate":
        from emoreason.eval.wheel_protocols import hit_rate

        kept = [i for i, s in enumerate(samples) if s.targets and s.targets.emotion]
        _need(kept, name, "targets.emotion")
        result = hit_rate(wheel, [samples[i].targets.emotion for i in kept], [open_labels[i] for i in kept])
    elif name == "mer-unibench-sentiment":
        from emoreason.eval import sentiment

        kept = [i for i, s in enumerate(samples) if s.targets and s.targets.valence is not None]
        _need(kept, name, "targets.valence")
        sets = [open_labels[i] for i in kept]
        extra: dict = {"sentiment_mode": sentiment_mode}
        if sentiment_mode == "judge":
            if judge is None:
                raise ValueError("--sentiment-mode judge needs --judge-url and --judge-model")
            polarities, report = sentiment.judge_polarities(sets, judge())
            extra |= report
        else:
            polarities = [sentiment.lexicon_polarity(s) for s in sets]
        result = {"protocol": name} | sentiment.sentiment_scores([samples[i].targets.valence for i in kept], polarities) | extra
    elif name == "mer2024-ov":
        from emoreason.eval.mer2024_ov import mer2024_ov

        if judge is None:
            raise ValueError("--protocol mer2024-ov needs --judge-url and --judge-model (synonyms are grouped by an LLM)")
        kept = [i for i, s in enumerate(samples) if s.targets and s.targets.open_vocab]
        _need(kept, name, "targets.open_vocab")
        result = mer2024_ov([samples[i].targets.open_vocab for i in kept], [open_labels[i] for i in kept], judge())
    elif name in ("dfew-5fold", "mafw-5fold"):
        result = {"protocol": name} | _five_fold(aligned, labels, predicted_labels)
    else:
        raise ValueError(f"unknown protocol {name!r}; expected one of {list(PROTOCOLS)}")
    return result | {"protocol_version": PROTOCOL_VERSION}


def _need(kept: list[int], name: str, field: str) -> None:
    if not kept:
        raise ValueError(f"--protocol {name}: no reference has {field}")


def _five_fold(aligned: Aligned, labels: Sequence[str], predicted: Sequence[str | None] | None) -> dict:
    from emoreason.eval.classification import classification_metrics
    from emoreason.eval.field_metrics import five_fold

    by_fold: dict[str, list[int]] = {}
    for i, sample in enumerate(aligned.samples):
        if sample.targets and sample.targets.emotion:
            fold = sample.source.get("fold")
            if fold is None:
                raise ValueError(f"reference {sample.id!r}: source.fold is missing (5-fold protocols need each sample's fold)")
            by_fold.setdefault(str(fold), []).append(i)
    if not by_fold or predicted is None:
        raise ValueError("5-fold protocols need discrete targets and labels")
    per_fold = {}
    for fold, indices in by_fold.items():
        metrics = classification_metrics([aligned.samples[i].targets.emotion for i in indices], [predicted[i] for i in indices], labels)
        per_fold[fold] = {"uar": metrics.uar, "war": metrics.war}
    return five_fold(per_fold)
