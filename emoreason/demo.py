"""`emoreason demo`: the whole pipeline on the embedded default, offline, on a CPU.

1. synthetic clips (emotion carried only by face and voice), tiny random-weight encoders and a tiny
   LLM built from their transformers configs, `prep` (decode, crop faces, run the encoders, cache
   features), recognition conversations split train / held-out;
2. `train` the tiny instruct recipe;
3. held-out accuracy, with and without the media;
4. `export` the model (LoRA merged) and `infer` over the held-out clips with features computed live;
5. one `chat` exchange;
6. `eval` the predictions: results with provenance, plots and the leaderboard;
7. with `--grpo`: a short GRPO run (configs/recipes/tiny_grpo.yaml) from the trained model, with the mean
   label reward of its rollouts and the held-out accuracy before and after.

The functions here are also the tiny recipe's fixtures for tests and benchmarks.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path

from emoreason.constants import MODALITIES
from emoreason.labels import RECOGNITION_PROMPT
from emoreason.schema import Sample, emotion_labels, load_samples

PREP_CONFIG = "configs/prep/demo.yaml"
TRAIN_CONFIG = "configs/train/tiny_instruct.yaml"
GRPO_CONFIG = "configs/recipes/tiny_grpo.yaml"
LATE_STEPS = 10  # the "after" reward: mean over the run's last steps (one step's 8 prompts are a noisy sample)


@dataclasses.dataclass
class TinyData:
    """Paths of a prepared tiny workspace."""

    train: Path  # samples with features and recognition conversations
    heldout: Path
    labels: list[str]
    llm: str
    encoders: dict[str, str]  # modality -> tiny encoder dir
    prep_report: dict

    def train_overrides(self, output_dir: str | Path) -> list[str]:
        """Overrides that point configs/train/tiny_instruct.yaml at this workspace (the encoders and media
        settings come from prep's featurizer.json beside the training file)."""
        return [f"model.llm={self.llm}", f"data.train={self.train}", f"optim.output_dir={output_dir}"]


def split_heldout(samples: list, num_classes: int, every: int = 4) -> tuple[list, list]:
    """Every `every`-th round of classes goes to held-out: the synthetic set cycles classes by index."""
    train = [s for i, s in enumerate(samples) if (i // num_classes) % every != every - 1]
    heldout = [s for i, s in enumerate(samples) if (i // num_classes) % every == every - 1]
    return train, heldout


def synthetic_clips(data_dir: Path, num_per_class: int, seed: int) -> Path:
    """The synthetic set's samples.jsonl in `data_dir`, generated unless these settings made the one there."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    stamp = data_dir / "synthetic.json"
    settings = {"num_per_class": num_per_class, "seed": seed}
    if not (stamp.exists() and json.loads(stamp.read_text()) == settings):
        generate_dataset(data_dir, SyntheticConfig(num_per_class=num_per_class, seed=seed))
        stamp.write_text(json.dumps(settings))
    return data_dir / "samples.jsonl"


def write_recognition_split(
    samples: list[Sample], source_order: list[Sample], labels: list[str], modalities: list[str], out_dir: Path, seed: int = 0
) -> tuple[Path, Path]:
    """Recognition conversations of `samples`, put back in `source_order` (the synthetic set's, whose class cycle
    `split_heldout` relies on: prep may reorder), split and written as out_dir/train.jsonl and heldout.jsonl."""
    from emoreason.data_prep.instructions import build_conversations
    from emoreason.schema import write_samples

    conversations = build_conversations(samples, "recognition", modalities=modalities, seed=seed, labels=labels)
    order = {s.id: i for i, s in enumerate(source_order)}
    conversations.sort(key=lambda s: order[s.id])
    train, heldout = split_heldout(conversations, len(labels))
    write_samples(out_dir / "train.jsonl", train)
    write_samples(out_dir / "heldout.jsonl", heldout)
    return out_dir / "train.jsonl", out_dir / "heldout.jsonl"


def prepare_tiny_data(
    workdir: str | Path, num_per_class: int = 40, seed: int = 0, prep_config: str = PREP_CONFIG, overrides: list[str] | None = None
) -> TinyData:
    """Synthetic clips -> prep -> recognition conversations, split train / held-out. Re-running reuses what exists."""
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep
    from emoreason.encoders.tiny import build_tiny_encoders
    from emoreason.model.tiny_llm import build_tiny_llm

    workdir = Path(workdir)
    clips = synthetic_clips(workdir / "data", num_per_class, seed)
    encoders = build_tiny_encoders(workdir / "encoders", seed=seed)
    llm = build_tiny_llm(workdir / "llm", seed=seed)
    fill = [f"input={clips}", f"output_dir={workdir / 'prep'}"]
    fill += [f"encoders.{m}.model={p}" for m, p in encoders.items()]
    report = run_prep(load_config(PrepConfig, prep_config, fill + (overrides or [])))

    prepped = load_samples(workdir / "prep" / "samples.jsonl")
    labels = emotion_labels(prepped)
    modalities = [m for m in MODALITIES if m in encoders]
    train, heldout = write_recognition_split(prepped, load_samples(clips), labels, modalities, workdir / "prep", seed)
    return TinyData(train, heldout, labels, llm, encoders, report.to_json())


def train_tiny(data: TinyData, output_dir: str | Path, overrides: list[str] | None = None) -> Path:
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup, train

    cfg = load_train_config(TRAIN_CONFIG, data.train_overrides(output_dir) + (overrides or []))
    return train(setup(cfg))


@dataclasses.dataclass
class GRPOReport:
    """Stage grpo from a supervised tiny model: rewards of the rollouts and greedy held-out accuracy, before and after."""

    reward_before: float
    """Mean label reward of the first step's rollouts: samples of the supervised policy itself."""
    reward_after: float
    """Mean label reward of the rollouts of the last LATE_STEPS steps."""
    accuracy_before: float
    accuracy_after: float
    model: Path
    steps: int


def grpo_tiny(data: TinyData, init: str | Path, output_dir: str | Path, overrides: list[str] | None = None,
              accuracy_before: float | None = None) -> GRPOReport:
    """configs/recipes/tiny_grpo.yaml from the supervised model `init` (what `emoreason demo --grpo` runs)."""
    from emoreason.model.loading import load_model
    from emoreason.train.config import load_train_config
    from emoreason.train.grpo_run import setup_grpo, train_grpo
    from emoreason.train.heldout import heldout_accuracy

    def accuracy(model_dir) -> float:
        model, processor = load_model(model_dir)
        return heldout_accuracy(model, processor, data.heldout, data.labels).accuracy

    before = accuracy(init) if accuracy_before is None else accuracy_before
    paths = [f"init_from={init}", f"data.train={data.train}", f"optim.output_dir={output_dir}"]
    run = setup_grpo(load_train_config(GRPO_CONFIG, paths + (overrides or [])))
    final = train_grpo(run)
    rewards = [h["rewards/label/mean"] for h in run.trainer.state.log_history if "rewards/label/mean" in h]
    late = rewards[-LATE_STEPS:]
    return GRPOReport(rewards[0], sum(late) / len(late), before, accuracy(final), final, len(rewards))


def print_heldout_accuracy(with_media: float, without: float, clips: int, unmatched: int, labels: list[str]) -> None:
    """Step 3 of either kind's demo: held-out accuracy with the media and, the control, without it."""
    print(f"  with media:    {with_media:.3f}  ({clips} clips, {unmatched} answers named no label)")
    print(f"  without media: {without:.3f}  (chance {1 / len(labels):.3f}; the subtitles are identical across classes)")


def export_and_infer(model_dir: Path, export_dir: Path, heldout: Path, predictions: Path, *infer_args: str) -> None:
    """Either kind's demo after training: export (LoRA merged), then `infer` over the held-out clips into a fresh
    predictions file (a fresh model: earlier predictions are stale, and infer would keep them)."""
    from emoreason.serving.export import export_model
    from emoreason.serving.infer import main as infer_main

    export_model(model_dir, export_dir)
    predictions.unlink(missing_ok=True)
    infer_main(["--model", str(export_dir), "--input", str(heldout), "--out", str(predictions), *infer_args])


def build_parser() -> argparse.ArgumentParser:
    from emoreason.cli_args import HelpFormatter

    parser = argparse.ArgumentParser(prog="emoreason demo", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--workdir", default="runs/demo", help="where the demo writes everything (default runs/demo)")
    parser.add_argument("--num-per-class", type=int, default=40, help="synthetic clips per emotion class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips and the tiny models' weights")
    parser.add_argument("--train", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for the train config")
    parser.add_argument("--grpo", action="store_true",
                        help="then a short GRPO run from the trained model (configs/recipes/tiny_grpo.yaml): label reward "
                             "and held-out accuracy before and after")
    parser.add_argument("--kind", choices=("projector", "native"), default="projector",
                        help="model kind: the projector model, or a tiny native backbone (emoreason.demo_native)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.kind == "native":
        from emoreason.demo_native import main as native_main

        workdir = args.workdir if args.workdir != "runs/demo" else "runs/demo_native"
        return native_main(Path(workdir), args.num_per_class, args.seed, args.train)
    from emoreason.eval.eval_cli import main as eval_main
    from emoreason.model.loading import load_model
    from emoreason.serving.chat import main as chat_main
    from emoreason.train.heldout import heldout_accuracy

    workdir = Path(args.workdir)
    total = 7 if args.grpo else 6
    print(f"[demo 1/{total}] synthetic clips -> prep -> conversations in {workdir}")
    data = prepare_tiny_data(workdir, args.num_per_class, args.seed)
    counts = data.prep_report["counts"]
    print(f"prep: {counts['ok']} ok, {counts['partial']} partial, {counts['failed']} failed; report {workdir / 'prep' / 'report.json'}")

    print(f"[demo 2/{total}] train the tiny instruct recipe -> {workdir / 'train'}")
    # A re-run trains again (the demo shows training), rather than being refused by the finished run.
    final = train_tiny(data, workdir / "train", ["optim.overwrite=true", *args.train])

    print(f"[demo 3/{total}] held-out accuracy (greedy decoding)")
    model, processor = load_model(final)
    with_media = heldout_accuracy(model, processor, data.heldout, data.labels)
    without = heldout_accuracy(model, processor, data.heldout, data.labels, with_media=False)
    print_heldout_accuracy(with_media.accuracy, without.accuracy, with_media.total, with_media.unmatched, data.labels)
    print(f"model: {final}")

    export_dir = workdir / "export"
    print(f"[demo 4/{total}] export (LoRA merged) -> {export_dir}; infer over the held-out clips, features computed live")
    predictions = workdir / "predictions.jsonl"
    data_root = workdir / "data"
    export_and_infer(final, export_dir, data.heldout, predictions, "--data-root", str(data_root))

    print(f"[demo 5/{total}] one chat exchange (what `emoreason chat --model` prints)")
    clip = load_samples(data.heldout)[0].media.video
    lines = [f"/video {clip}", RECOGNITION_PROMPT.format(labels=", ".join(data.labels))]
    print("\n".join(f"  you> {line}" for line in lines))
    script = io.StringIO("\n".join(lines) + "\n")
    chat_main(["--model", str(export_dir), "--media-root", str(data_root), "--max-tokens", "16"], stdin=script)

    board = workdir / "leaderboard"
    print(f"[demo 6/{total}] eval the predictions -> {board}")
    eval_main([
        "--predictions", str(predictions), "--references", str(data.heldout), "--out-dir", str(board),
        "--name", "tiny-demo", "--model", str(export_dir), "--labels", ",".join(data.labels),
    ])
    print((board / "leaderboard.md").read_text(), end="")
    if args.grpo:
        grpo_dir = workdir / "grpo"
        print(f"[demo 7/7] GRPO ({GRPO_CONFIG}, label reward) from the trained model -> {grpo_dir}")
        report = grpo_tiny(data, final, grpo_dir, ["optim.overwrite=true"], accuracy_before=with_media.accuracy)
        print(f"  mean label reward of the rollouts: {report.reward_before:.3f} at step 1 -> "
              f"{report.reward_after:.3f} over the last {min(LATE_STEPS, report.steps)} of {report.steps} steps")
        print(f"  held-out accuracy (greedy):        {report.accuracy_before:.3f} -> {report.accuracy_after:.3f}")
        print(f"model: {report.model}")
    # The venv's own script, so the line works pasted into a shell where the venv is not activated.
    command = Path(sys.executable).parent / "emoreason"
    print(f"open the model and these results in a browser (127.0.0.1 only):\n  {command if command.exists() else 'emoreason'} web "
          f"--model {export_dir} --media-root {data_root} --results {board}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
