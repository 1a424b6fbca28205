"""Benchmark evaluation: offline metrics over 10,000 predictions, and the LLM judge on a fake server.

    .venv/bin/python scripts/bench_eval.py [--num 10000] [--judge-items 64] [--judge-delay 0.05]

Prints one JSON object; nothing is asserted. Everything is generated here: references and answers
drawn from the MER label set and the shipped emotion wheel, and an OpenAI-compatible fake judge on
127.0.0.1 that answers "Score: N" after --judge-delay seconds (a stand-in for a remote LLM's
latency, so the figures show what concurrency and the cache buy, not a model's speed).

1. offline: wall time to score --num predictions with the offline metrics (classification with
   label extraction from free text, valence, open vocabulary on the wheel), and with the offline
   judge (embedding similarity + lexical F1) on their explanations.
2. judge: items/s at concurrency 1 and 16 (fresh caches), then a re-run on the warm cache:
   its hit ratio and the HTTP calls it made.
3. track2: --track2 predictions through the MER2025 track-2 protocol on an official-layout wheel
   folder generated here (format.csv, synonym.xlsx, wheel1..5.xlsx of the official files' sizes:
   ~250 wheel words, ~1,250 synonyms, ~7,400 word forms): load time, scoring time; then judge-based
   open-label extraction of --judge-items descriptions, and its re-run on the warm cache (0 calls).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake judge server helper

LABELS = ("neutral", "angry", "happy", "sad", "worried", "surprise")
CLUES = ("a raised voice", "a trembling voice", "a wide smile", "furrowed brows", "tears", "a slow sigh", "wide eyes", "a clenched jaw")


def synthetic_pairs(num: int, seed: int = 0) -> tuple[list, list]:
    from emoreason.eval.predictions import Prediction
    from emoreason.eval.taxonomy import shipped_wheel
    from emoreason.schema import Sample

    rng = random.Random(seed)
    words = sorted(shipped_wheel().index)
    samples, predictions = [], []
    for i in range(num):
        label = rng.choice(LABELS)
        said = label if rng.random() < 0.7 else rng.choice(LABELS)
        text = rng.choice([f"The person is {said}.", f"{said}", f"Probably {said}, given {rng.choice(CLUES)}.", "Hard to tell."])
        samples.append(Sample.model_validate({
            "id": f"s{i}",
            "targets": {"emotion": label, "valence": rng.uniform(-5, 5), "open_vocab": rng.sample(words, rng.randint(1, 3)),
                        "reasoning": f"The speaker shows {rng.choice(CLUES)} and {rng.choice(CLUES)}, so the emotion is {label}."},
        }))
        predictions.append(Prediction(
            id=f"s{i}", text=text, valence=rng.uniform(-5, 5), open_vocab=rng.sample(words, rng.randint(1, 3)),
        ))
    return samples, predictions


def bench_offline(num: int) -> dict:
    from emoreason.eval.predictions import align
    from emoreason.eval.scoring import offline_results
    from emoreason.eval.taxonomy import shipped_wheel

    samples, predictions = synthetic_pairs(num)
    wheel = shipped_wheel()
    start = time.perf_counter()
    aligned = align(samples, {p.id: p for p in predictions})
    results = offline_results(aligned, list(LABELS), wheel)
    metrics_s = time.perf_counter() - start
    out = {
        "predictions": num,
        "metrics_seconds": round(metrics_s, 3),
        "metrics_per_second": round(num / metrics_s),
        "unmatched": results["label_extraction"]["unmatched"],
    }
    try:
        from emoreason.eval.offline_judge import OfflineJudge
    except ImportError as exc:
        out["offline_judge"] = f"unavailable: {exc}"
        return out
    judge = OfflineJudge()
    start = time.perf_counter()
    judge.score([p.text for p in predictions], [s.targets.reasoning for s in samples])
    judge_s = time.perf_counter() - start
    out["offline_judge_seconds"] = round(judge_s, 3)
    out["offline_judge_per_second"] = round(num / judge_s)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=10_000)
    parser.add_argument("--judge-items", type=int, default=64)
    parser.add_argument("--judge-delay", type=float, default=0.05)
    parser.add_argument("--track2", type=int, default=20_000)
    args = parser.parse_args()
    report = {"offline": bench_offline(args.num)}
    report["judge"] = bench_judge(args.judge_items, args.judge_delay)
    report["track2"] = bench_track2(args.track2, args.judge_items, args.judge_delay)
    print(json.dumps(report, indent=2))
    return 0


def bench_judge(items: int, delay: float) -> dict:
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    from emoreason.eval.judge_client import LLMJudge

    work = [{"reference": f"She smiles ({i}).", "prediction": f"A smile and a bright voice ({i})."} for i in range(items)]
    out: dict = {"items": items, "server_delay_s": delay}
    with tempfile.TemporaryDirectory() as tmp, running_server(FakeJudge(lambda n, body: "Score: 7", delay=delay).app()) as url:
        for concurrency in (1, 16):
            judge = LLMJudge(f"{url}/v1", "fake-judge", Path(tmp) / f"cache{concurrency}.sqlite", concurrency=concurrency)
            start = time.perf_counter()
            judge.score("clue_overlap", work)
            wall = time.perf_counter() - start
            out[f"c{concurrency}_items_per_s"] = round(items / wall, 1)
            judge.close()
        out["speedup_c16_over_c1"] = round(out["c16_items_per_s"] / out["c1_items_per_s"], 2)
        rerun = LLMJudge(f"{url}/v1", "fake-judge", Path(tmp) / "cache16.sqlite", concurrency=16)
        start = time.perf_counter()
        rerun.score("clue_overlap", work)
        out["rerun_seconds"] = round(time.perf_counter() - start, 3)
        out["rerun_cache_hit_ratio"] = rerun.stats.cache_hits / items
        out["rerun_http_calls"] = rerun.stats.calls
        rerun.close()
    return out


def official_layout_folder(folder: Path, seed: int = 0) -> dict:
    """A made-up wheel folder the size of the official one; returns its vocabulary."""
    import csv

    import openpyxl

    rng = random.Random(seed)
    pool = [f"emo{i}" for i in range(250)]
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, 6):
        words = rng.sample(pool, 120)
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(["level1", "level2", "level3"])
        for a in range(6):
            for b in range(5):
                for c in range(4):
                    word = words[a * 20 + b * 4 + c]
                    sheet.append([words[a * 20] if b == c == 0 else None, words[a * 20 + b * 4 + 1] if c == 0 else None, word])
        book.save(folder / f"wheel{number}.xlsx")
    synonyms = [f"syn{i}" for i in range(1000)]
    book = openpyxl.Workbook()
    sheet = book.active
    runs = range(1, 9)
    sheet.append([c for run in runs for c in (f"word_run{run}", f"synonym_run{run}")])
    for word in pool:
        sheet.append([v for _ in runs for v in (word, ", ".join(rng.sample(synonyms, 4)))])
    book.save(folder / "synonym.xlsx")
    forms: dict[str, list[str]] = {name: [f"{name}{suffix}" for suffix in ("ed", "ing", "ly", "ness", "s")] for name in pool + synonyms}
    with open(folder / "format.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "format"])
        for name, variants in forms.items():
            writer.writerow([name, ",".join(variants)])
    return {"vocabulary": sorted({*forms, *(v for vs in forms.values() for v in vs)}) + ["unknownword"]}


def bench_track2(num: int, judge_items: int, delay: float) -> dict:
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    from emoreason.eval.judge_client import LLMJudge
    from emoreason.eval.label_modes import EXTRACTION_PROMPTS, judge_open_labels
    from emoreason.eval.official_wheels import load_official_wheels
    from emoreason.eval.predictions import Prediction
    from emoreason.eval.wheel_protocols import ew_scores

    out: dict = {"predictions": num}
    with tempfile.TemporaryDirectory() as tmp:
        vocabulary = official_layout_folder(Path(tmp) / "emotion_wheel")["vocabulary"]
        rng = random.Random(1)
        references = [rng.sample(vocabulary, rng.randint(1, 4)) for _ in range(num)]
        predictions = ["[" + ", ".join(rng.sample(vocabulary, rng.randint(0, 4))) + "]" for _ in range(num)]
        start = time.perf_counter()
        wheels = load_official_wheels(Path(tmp) / "emotion_wheel")
        out["wheel_load_seconds"] = round(time.perf_counter() - start, 3)
        out["word_forms"], out["synonym_labels"] = len(wheels.format_mapping), len(wheels.raw_mapping)
        start = time.perf_counter()
        result = ew_scores(wheels, references, predictions)
        out["five_wheel_seconds"] = round(time.perf_counter() - start, 3)
        out["total_seconds"] = round(out["wheel_load_seconds"] + out["five_wheel_seconds"], 3)
        out["score"] = round(result.score, 4)
        texts = [Prediction(id=f"d{i}", text=f"Clip {i}: she smiles, her voice is bright.") for i in range(judge_items)]
        with running_server(FakeJudge(lambda n, body: "[happy, cheerful]", delay=delay).app()) as url:
            for run in ("cold", "warm"):
                judge = LLMJudge(f"{url}/v1", "fake-judge", Path(tmp) / "extract.sqlite", prompts=EXTRACTION_PROMPTS, concurrency=16)
                start = time.perf_counter()
                judge_open_labels(texts, judge, progress=False)
                out[f"extraction_{run}_seconds"] = round(time.perf_counter() - start, 3)
                out[f"extraction_{run}_http_calls"] = judge.stats.calls
                judge.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
