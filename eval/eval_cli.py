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
from emoreason.cli_args import HelpFormatter
from emoreason.eval.leaderboard import RESULTS_SUFFIX, write_leaderboard
from emoreason.eval.predictions import PredictionError, align, read_predictions
from emoreason.eval.protocols import PROTOCOL_VERSION, PROTOCOLS, protocol_results
from emoreason.eval.provenance import model_config_hash, provenance
from emoreason.eval.taxonomy import DEFAULT_WHEEL, TaxonomyError, load_wheel
from emoreason.schema import SchemaError, emotion_labels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason eval", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--predictions", required=True, help="predictions JSONL (`emoreason infer` output)")
    parser.add_argument("--references", required=True, help="schema JSONL with targets, or registry:NAME (the dataset registry)")
    parser.add_argument("--out-dir", required=True, help="where results, plots and the leaderboard go")
    parser.add_argument("--name", help="run name in the leaderboard (default: the predictions file's stem)")
    parser.add_argument("--labels", help="comma-separated label set (default: every targets.emotion in the references, sorted)")
    parser.add_argument("--model", help="the model directory that made the predictions: recorded with its config hash")
    parser.add_argument("--wheel", default=DEFAULT_WHEEL,
                        help=f"emotion wheel: a shipped name, a YAML path, or the official emotion_wheel/ folder (default {DEFAULT_WHEEL})")
    parser.add_argument("--protocol", default="emoreason", choices=PROTOCOLS, help="benchmark protocol to score as its official scorer does (docs/eval.md)")
    parser.add_argument("--extraction", default="split", choices=("split", "judge"),
                        help="open labels from the text: split on commas (default) or the official LLM extraction step (needs --judge-url)")
    parser.add_argument("--label-mode", default="emoreason", choices=("emoreason", "emotion-llama"),
                        help="discrete labels: the one label named (default) or Emotion-LLaMA's last-token rule")
    parser.add_argument("--fallback-label", help="count answers that name no label as this label (recorded in the results)")
    parser.add_argument("--sentiment-mode", default="lexicon", choices=("lexicon", "judge"), help="for --protocol mer-unibench-sentiment")
    parser.add_argument("--rouge", action="store_true", help="also score explanations with ROUGE-L (rouge-score)")
    parser.add_argument("--no-plots", action="store_true", help="skip the confusion-matrix and recall PNGs")
    judge = parser.add_argument_group("LLM judge (EMER clue and label overlap, 1-10)")
    judge.add_argument("--judge-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (emoreason serve works)")
    judge.add_argument("--judge-model", help="judge model id at that endpoint")
    judge.add_argument("--judge-api-key", default=os.environ.get("EMOREASON_JUDGE_API_KEY"), help="default: $EMOREASON_JUDGE_API_KEY")
    judge.add_argument("--judge-prompts", default="emer_judge_v1", help="prompt set name or YAML path (default emer_judge_v1)")
    judge.add_argument("--judge-cache", help="cache file (default OUT_DIR/judge_cache.sqlite); a re-run makes no calls")
    judge.add_argument("--judge-concurrency", type=int, default=8, help="judge requests in flight at once")
    judge.add_argument("--judge-timeout", type=float, default=30.0, help="seconds per request before it counts as timed out (default 30)")
    judge.add_argument("--judge-retries", type=int, default=4, help="retries of a timed-out or failed request before its item is left unscored (default 4)")
    parser.add_argument("--offline-judge", action="store_true", help="also score explanations with the offline judge (embeddings + lexical F1)")
    parser.add_argument("--cot", action="store_true", help="also score chain-of-thought structure, consistency and grounding")
    return parser


def load_any_wheel(source: str):
    """The official emotion_wheel/ folder, or a shipped/YAML wheel."""
    from emoreason.eval.official_wheels import is_wheel_folder, load_official_wheels

    return load_official_wheels(source) if is_wheel_folder(source) else load_wheel(source)


def evaluate_run(args: argparse.Namespace) -> Path:
    from emoreason.eval.scoring import discrete_labels, offline_results  # scikit-learn: only once there is something to score
    from emoreason.eval.official_wheels import OfficialWheels

    from emoreason.dataset_registry import resolve_path

    predictions_path, references_path = Path(args.predictions), Path(resolve_path(args.references, "--references")[0])
    aligned = align(references_path, read_predictions(predictions_path))
    labels = (
        [label.strip() for label in args.labels.split(",") if label.strip()]
        if args.labels
        else emotion_labels(aligned.samples)
    )
    wheel = load_any_wheel(args.wheel)
    official = isinstance(wheel, OfficialWheels)
    protocol = args.protocol
    if official and protocol == "emoreason" and any(s.targets and s.targets.open_vocab for s in aligned.samples):
        protocol = "mer2025-track2"  # an official wheel folder is scored the official way
    name = args.name or predictions_path.stem
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"name": name}
    results["provenance"] = provenance(
        predictions_path,
        references_path,
        model=args.model,
        config_hash=model_config_hash(args.model) if args.model else None,
        taxonomy_version=wheel.version,
    )
    results["provenance"] |= {
        "protocol": protocol,
        "protocol_version": PROTOCOL_VERSION,
        "wheel_source": dict(wheel.sha256) if official else {"shipped_or_yaml": str(args.wheel)},
        "open_label_extraction": args.extraction,
        "discrete_label_mode": args.label_mode,
        "fallback_label": args.fallback_label,
    }
    results |= offline_results(aligned, labels, None if official else wheel, args.label_mode, args.fallback_label)

    opened: list = []

    def make_judge(prompts: str | None = None):
        from emoreason.eval.judge_client import LLMJudge

        if not args.judge_url or not args.judge_model:
            raise ValueError("this step needs an LLM judge: pass --judge-url and --judge-model")
        judge = LLMJudge(
            args.judge_url, args.judge_model, Path(args.judge_cache or out_dir / "judge_cache.sqlite"),
            api_key=args.judge_api_key, prompts=prompts or args.judge_prompts, concurrency=args.judge_concurrency,
            timeout=args.judge_timeout, max_retries=args.judge_retries,
        )
        opened.append(judge)
        return judge

    try:
        if protocol != "emoreason":
            from emoreason.eval.label_modes import EXTRACTION_PROMPTS, judge_open_labels, split_open_labels

            if args.extraction == "judge":
                open_labels, results["open_label_extraction"] = judge_open_labels(aligned.predictions, make_judge(EXTRACTION_PROMPTS))
            else:
                open_labels, results["open_label_extraction"] = split_open_labels(aligned.predictions)
            predicted = discrete_labels(aligned, labels, args.label_mode, args.fallback_label) if labels else None
            judge_factory = (lambda: make_judge(EXTRACTION_PROMPTS)) if args.judge_url else None
            results["protocol_scores"] = protocol_results(
                protocol, aligned, labels, open_labels, wheel, judge_factory, args.sentiment_mode, predicted
            )
        if args.judge_url:
            from emoreason.eval.explanations import explained_pairs, llm_judge_results

            if explained_pairs(aligned):
                judge = make_judge()
                results["llm_judge"] = llm_judge_results(aligned, judge)
                results["provenance"]["judge_model"] = judge.model
                results["provenance"]["judge_prompt_version"] = judge.prompt_version
    finally:
        for judge in opened:
            judge.close()
    if args.offline_judge:
        from emoreason.eval.explanations import offline_judge_results

        results["offline_judge"] = offline_judge_results(aligned)
    if args.cot:
        from emoreason.eval.explanations import cot_results

        results["cot"] = cot_results(aligned, labels)
    if args.rouge:
        from emoreason.eval.explanations import explained_pairs, reference_explanation
        from emoreason.eval.field_metrics import rouge_l

        pairs = explained_pairs(aligned)
        if pairs:
            results["rouge_l"] = rouge_l([reference_explanation(s) for s, _ in pairs], [p.text for _, p in pairs])
    if (au := _au_results(aligned)) is not None:
        results["action_units"] = au
    if "classification" in results and not args.no_plots:
        from emoreason.eval.classification import ClassificationResult
        from emoreason.eval.plots import confusion_png, recall_png

        result = ClassificationResult(**results["classification"])
        results["plots"] = {
            "confusion": str(confusion_png(result, out_dir / f"{name}.confusion.png", run_name=name)),
            "recall": str(recall_png(result, out_dir / f"{name}.recall.png", run_name=name)),
        }
    path = out_dir / f"{name}{RESULTS_SUFFIX}"
    write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    write_leaderboard(out_dir)
    return path


def _au_results(aligned) -> dict | None:
    """AU F1 over references that list `source.action_units`, against the AU codes the answer names."""
    from emoreason.eval.field_metrics import au_f1

    pairs = [(s.source["action_units"], p.text or "") for s, p in zip(aligned.samples, aligned.predictions)
             if "action_units" in s.source and p is not None and p.error is None]
    return au_f1([r for r, _ in pairs], [t for _, t in pairs]) if pairs else None


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
    if (m := results.get("mer2023_score_partial")) is not None:
        lines.append(f"MER2023 score (partial: {m['valence_scored']} of {m['samples']} samples have a valence) {m['score']:.4f}")
    if (p := results.get("protocol_scores")) is not None:
        shown = {k: v for k, v in p.items() if isinstance(v, float)}
        lines.append(f"protocol {p['protocol']}: " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
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
