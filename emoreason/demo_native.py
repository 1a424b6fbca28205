"""`emoreason demo --kind native`: a tiny native backbone learns the synthetic set through its video input.

1. synthetic clips (emotion carried only by face and voice), recognition conversations split
   train / held-out, and the tiny random-weight Qwen2.5-VL twin built from its transformers config;
2. `train` configs/train/tiny_native.yaml (HF Trainer, LoRA on the LLM, vision tower and merger full);
3. held-out accuracy with the clips and, as a control, without them;
4. `export` (every LoRA merged), `infer` over the held-out clips and `eval` the predictions.

The functions here are also the native kind's fixtures for tests and benchmarks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emoreason.atomic import write_json_atomic
from emoreason.schema import Sample

TRAIN_CONFIG = "configs/train/tiny_native.yaml"
TWIN_KIND = "qwen2_5_vl"


@dataclasses.dataclass
class NativeData:
    """Paths of a tiny native workspace: samples with media paths (relative to their file's folder)."""

    train: Path
    heldout: Path
    labels: list[str]
    base: str  # the tiny twin's directory

    def train_overrides(self, output_dir: str | Path) -> list[str]:
        return [f"model.base={self.base}", f"data.train={self.train}", f"optim.output_dir={output_dir}"]


def prepare_native_data(workdir: str | Path, num_per_class: int = 40, seed: int = 0, kind: str = TWIN_KIND) -> NativeData:
    """Synthetic clips -> recognition conversations (a <video> placeholder) split train / held-out, and the twin."""
    from emoreason.demo import synthetic_clips, write_recognition_split
    from emoreason.native.tiny import build_tiny_native
    from emoreason.schema import emotion_labels, load_samples

    workdir = Path(workdir)
    samples = load_samples(synthetic_clips(workdir / "data", num_per_class, seed))
    labels = emotion_labels(samples)
    train, heldout = write_recognition_split(samples, samples, labels, ["video"], workdir / "data", seed)
    base = build_tiny_native(kind, workdir / f"twin_{kind}", seed=seed)
    return NativeData(train, heldout, labels, base)


def train_native(data: NativeData, output_dir: str | Path, overrides: list[str] | None = None) -> Path:
    from emoreason.train.native_config import load_native_train_config
    from emoreason.train.native_run import setup, train

    cfg = load_native_train_config(TRAIN_CONFIG, data.train_overrides(output_dir) + (overrides or []))
    return train(setup(cfg))


def without_media(sample: Sample) -> Sample:
    """The control: the same conversation with no media (the placeholder goes, nothing is filled in)."""
    return sample.model_copy(update={"media": sample.media.model_copy(update={"video": None, "audio": None, "image": None})})


def heldout_accuracy(model_dir: str | Path, heldout: Path, labels: list[str], with_media: bool = True) -> tuple[float, int, int]:
    """(accuracy, clips, answers naming no label) of greedy answers through the hf engine, as `infer` runs them."""
    from emoreason.labels import extract_label
    from emoreason.schema import load_samples
    from emoreason.serving.backends import load_engine
    from emoreason.serving.infer import sample_request

    engine = load_engine("hf", model_dir, max_batch_size=16)
    samples = [s if with_media else without_media(s) for s in load_samples(heldout)]
    requests = [sample_request(s, labels, engine.modalities, None, 8, fallback_root=heldout.parent) for s in samples]
    completions = engine.generate(requests)
    parsed = [extract_label(c.text, labels) for c in completions]
    correct = sum(p == s.targets.emotion for p, s in zip(parsed, samples))
    return correct / max(1, len(samples)), len(samples), sum(p is None for p in parsed)


def main(workdir: Path, num_per_class: int, seed: int, overrides: list[str]) -> int:
    from emoreason.demo import export_and_infer, print_heldout_accuracy
    from emoreason.eval.eval_cli import main as eval_main

    print(f"[demo 1/4] synthetic clips -> conversations, tiny {TWIN_KIND} twin in {workdir}")
    data = prepare_native_data(workdir, num_per_class, seed)
    print(f"[demo 2/4] train {TRAIN_CONFIG} -> {workdir / 'train'}")
    final = train_native(data, workdir / "train", ["optim.overwrite=true", *overrides])

    print("[demo 3/4] held-out accuracy (greedy decoding)")
    with_media, total, unmatched = heldout_accuracy(final, data.heldout, data.labels)
    without, _, _ = heldout_accuracy(final, data.heldout, data.labels, with_media=False)
    print_heldout_accuracy(with_media, without, total, unmatched, data.labels)

    export_dir = workdir / "export"
    print(f"[demo 4/4] export (every LoRA merged) -> {export_dir}; infer and eval the held-out clips")
    predictions = workdir / "predictions.jsonl"
    export_and_infer(final, export_dir, data.heldout, predictions)
    board = workdir / "leaderboard"
    eval_main(["--predictions", str(predictions), "--references", str(data.heldout), "--out-dir", str(board),
               "--name", "tiny-native-demo", "--model", str(export_dir), "--labels", ",".join(data.labels)])
    print((board / "leaderboard.md").read_text(), end="")
    # The figures above as data, for scripts and tests (the console lines stay the human summary).
    write_json_atomic(workdir / "demo_report.json", {
        "kind": "native", "twin": TWIN_KIND, "heldout_clips": total, "chance": 1 / len(data.labels),
        "accuracy_with_media": with_media, "accuracy_without_media": without, "unmatched_with_media": unmatched,
        "model": str(final), "export": str(export_dir), "predictions": str(predictions), "leaderboard": str(board),
    })
    return 0
