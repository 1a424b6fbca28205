"""`emoreason eval`: score a predictions JSONL against reference samples, and update the leaderboard.

    emoreason eval --predictions runs/mer/predictions.jsonl --references data/test.jsonl \
        --out-dir runs/leaderboard --name mer-lora-r8 [--model runs/mer/export]

Writes into --out-dir:
    NAME.results.json        metrics with provenance (inputs' sha256, model config hash, judge model,
                             prompt and taxonomy versions, emoreason version, date)
    NAME.confusion.png       confusion matrix (discrete labels; the last column counts unmatched answers)
    NAME.recall.png          per-class recall with UAR
    leaderboard.md / .html   one row per *.results.json in --out-dir
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from emoreason.atomic import write_text_atomic
from emoreason.eval.leaderboard import RESULTS_SUFFIX, write_leaderboard
from emoreason.eval.predictions import PredictionError, align, read_predictions
from emoreason.eval.provenance import model_config_hash, provenance
from emoreason.eval.scoring import offline_results
from emoreason.eval.taxonomy import DEFAULT_WHEEL, TaxonomyError, load_wheel
from emoreason.schema import SchemaError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason eval", description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, help="predictions JSONL (`emoreason infer` output)")
    parser.add_argument("--references", required=True, help="schema JSONL with targets")
    parser.add_argument("--out-dir", required=True, help="where results, plots and the leaderboard go")
    parser.add_argument("--name", help="run name in the leaderboard (default: the predictions file's stem)")
    parser.add_argument("--labels", help="comma-separated label set (default: every targets.emotion in the references, sorted)")
    parser.add_argument("--model", help="the model directory that made the predictions: recorded with its config hash")
    parser.add_argument("--wheel", default=DEFAULT_WHEEL, help=f"emotion wheel name or YAML path (default {DEFAULT_WHEEL})")
    parser.add_argument("--no-plots", action="store_true")
    judge = parser.add_argument_group("LLM judge (EMER clue and label overlap, 1-10)")
    judge.add_argument("--judge-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (emoreason serve works)")
    judge.add_argument("--judge-model", help="judge model id at that endpoint")
    judge.add_argument("--judge-api-key", default=os.environ.get("EMOREASON_JUDGE_API_KEY"), help="default: $EMOREASON_JUDGE_API_KEY")
    judge.add_argument("--judge-prompts", default="emer_judge_v1", help="prompt set name or YAML path (default emer_judge_v1)")
    judge.add_argument("--judge-cache", help="cache file (default OUT_DIR/judge_cache.sqlite); a re-run makes no calls")
    judge.add_argument("--judge-concurrency", type=int, default=8)
    judge.add_argument("--judge-timeout", type=float, default=30.0, help="seconds per request before it counts as timed out (default 30)")
    judge.add_argument("--judge-retries", type=int, default=4, help="retries of a timed-out or failed request before its item is left unscored (default 4)")
    parser.add_argument("--offline-judge", action="store_true", help="also score explanations with the offline judge (embeddings + lexical F1)")
    parser.add_argument("--cot", action="store_true", help="also score chain-of-thought structure, consistency and grounding")
    return parser


def evaluate_run(args: argparse.Namespace) -> Path:
    predictions_path, references_path = Path(args.predictions), Path(args.references)
    aligned = align(references_path, read_predictions(predictions_path))
    labels = (
        [label.strip() for label in args.labels.split(",") if label.strip()]
        if args.labels
        else sorted({s.targets.emotion for s in aligned.samples if s.targets and s.targets.emotion})
    )
    wheel = load_wheel(args.wheel)
    name = args.name or predictions_path.stem
    results = {"name": name}
    results["provenance"] = provenance(
        predictions_path,
        references_path,
        model=args.model,
        config_hash=model_config_hash(args.model) if args.model else None,
        taxonomy_version=wheel.version,
    )
    results |= offline_results(aligned, labels, wheel)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.judge_url:
        from emoreason.eval.explanations import llm_judge_results
        from emoreason.eval.judge_client import LLMJudge

        if not args.judge_model:
            raise ValueError("--judge-model is required with --judge-url")
        judge = LLMJudge(
            args.judge_url, args.judge_model, Path(args.judge_cache or out_dir / "judge_cache.sqlite"),
            api_key=args.judge_api_key, prompts=args.judge_prompts, concurrency=args.judge_concurrency,
            timeout=args.judge_timeout, max_retries=args.judge_retries,
        )
        try:
            results["llm_judge"] = llm_judge_results(aligned, judge)
        finally:
            judge.close()
        results["provenance"]["judge_model"] = judge.model
        results["provenance"]["judge_prompt_version"] = judge.prompt_version
    if args.offline_judge:
        from emoreason.eval.explanations import offline_judge_results

        results["offline_judge"] = offline_judge_results(aligned)
    if args.cot:
        from emoreason.eval.explanations import cot_results

        results["cot"] = cot_results(aligned, labels)
    if "classification" in results and not args.no_plots:
        from emoreason.eval.classification import ClassificationResult
        from emoreason.eval.plots import confusion_png, recall_png

        result = ClassificationResult(**results["classification"])
        results["plots"] = {
            "confusion": str(confusion_png(result, out_dir / f"{name}.confusion.png")),
            "recall": str(recall_png(result, out_dir / f"{name}.recall.png")),
        }
    path = out_dir / f"{name}{RESULTS_SUFFIX}"
    write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    write_leaderboard(out_dir)
    return path


def summary(results: dict) -> str:
    lines = []
    if (c := results.get("classification")) is not None:
        e = results["label_extraction"]
        lines.append(
            f"accuracy {c['accuracy']:.4f}  weighted F1 {c['weighted_f1']:.4f}  macro F1 {c['macro_f1']:.4f}  "
            f"UAR {c['uar']:.4f}  WAR {c['war']:.4f}  ({e['unmatched']} of {e['scored']} answers named no label)"
        )
    if (v := results.get("valence")) is not None and "mse" in v:
        lines.append(f"valence MSE {v['mse']:.4f}  CCC {v['ccc']:.4f}")
    if "mer2023_score" in results:
        lines.append(f"MER2023 score {results['mer2023_score']:.4f}")
    if (o := results.get("open_vocab")) is not None:
        lines.append("open vocabulary F: " + "  ".join(f"L{level} {s['f1']:.4f}" for level, s in o["levels"].items()))
    if (j := results.get("llm_judge")) is not None:
        def judged(k: str) -> str:
            mean = "n/a" if j[k]["mean"] is None else f"{j[k]['mean']:.2f}"
            return f"{k} {mean} ({j[k]['scored']} scored, {j[k]['failed']} failed, {j[k]['unparsable']} unparsable)"

        scores = "  ".join(judged(k) for k in ("clue_overlap", "label_overlap"))
        lines.append(f"LLM judge {j['judge_model']} ({j['prompt_version']}): {scores}  [{j['calls']} calls, {j['cache_hits']} cached]")
    if (o := results.get("offline_judge")) is not None and o["scored"]:
        lines.append(f"offline judge: embedding similarity {o['offline_embedding_similarity']:.4f}  lexical F1 {o['offline_lexical_f1']:.4f}")
    if (c := results.get("cot")) is not None and c["samples"]:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"chain of thought: structure {fmt(c.get('structure_mean'))}  consistency {fmt(c.get('consistency_rate'))}  grounding {fmt(c.get('grounding_mean'))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = evaluate_run(args)
    except (FileNotFoundError, PredictionError, SchemaError, TaxonomyError, ValueError) as exc:
        print(f"emoreason eval: {exc}", file=sys.stderr)
        return 2
    results = json.loads(path.read_text())
    print(summary(results))
    print(f"results: {path}\nleaderboard: {path.parent / 'leaderboard.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
