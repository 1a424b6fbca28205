"""The `recipes` section of scripts/bench_train.py: each projector recipe's tiny twin against the plain `mlp` recipe.

Every train recipe in configs/recipes/ with a `model.projectors` block and a prep file beside it is built as its
tiny twin (emoreason.recipe_twins, the twin tests/test_projector_recipes.py checks), on one synthetic clip
whose features its own Featurizer computes (landmarks from the clip's annotation). For each recipe:

- step_ms: one optimiser step (forward, backward, AdamW step over the twin's trainable parameters) on a batch of
  `batch` copies of the clip, median over interleaved repeats after warm-up;
- mlp_step_ms: the same step of the plain recipe (one `mlp` projector, LoRA r8 alpha16 on q/k/v/o as
  configs/train/tiny_instruct.yaml) on the same token ids, mask and labels, every media position fed by the mlp
  projector: equal token count, so the ratio is what the recipe's connectors (and its LoRA) cost;
- connectors_ms: forward + backward of the twin's connectors alone (its projectors, landmark attention and
  pre-fusion, `EmotionLM.project`) on the same features, and connectors_share = connectors_ms / step_ms;
- tuned_encoder_ms: a LoRA-tuned encoder's forward + backward in the graph (`EmotionLM.encode_media`), when the
  recipe has one (its share of the step beside the connectors').
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Which emotion does the person express?"


def _batch(featurizer, processor, modalities, sample, clip: Path, copies: int) -> dict:
    """`copies` identical training items of the clip, collated as the dataset and collator build them."""
    from emoreason.recipe_twins import training_item
    from emoreason.train.collator import EmotionCollator

    turns = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "happy"}]
    item = training_item(featurizer, processor, modalities, sample, clip, turns)
    batch = EmotionCollator(processor.pad_id)([item] * copies)
    return {k: batch[k] for k in ("input_ids", "attention_mask", "media_ids", "labels", "features", "encoder_inputs") if k in batch}


def _plain_mlp(tiny_llm: str, encoders_dir: Path):
    """The plain recipe: one mlp projector (on a tiny ViT's width) and LoRA r8 alpha16 on q/k/v/o."""
    from emoreason.encoders.config import EncoderConfig
    from emoreason.encoders.tiny import build_tiny
    from emoreason.model.config import LoraSettings, ModelConfig
    from emoreason.model.loading import build_model
    from emoreason.model.projectors import ProjectorConfig

    config = ModelConfig(llm=tiny_llm, encoders={"face": EncoderConfig(model=build_tiny("vit", encoders_dir), pooling="none")},
                         projectors={"face": ProjectorConfig(kind="mlp")}, lora=LoraSettings(r=8, alpha=16, dropout=0.0))
    model, _ = build_model(config, seed=0)
    return model


def _as_plain(batch: dict, model) -> dict:
    """The same token ids, mask and labels with every media position fed by the plain model's face projector."""
    from emoreason.constants import MEDIA_INDEX

    media = batch["media_ids"] != 0  # [b, s]
    per_item = media.sum(dim=1)  # [b]
    width = model.feature_dims["face"]
    features = torch.randn(len(per_item), int(per_item.max()), width)
    mask = torch.arange(features.shape[1])[None] < per_item[:, None]
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"],
            "media_ids": media.long() * MEDIA_INDEX["face"], "features": {"face": (features, mask)}}


def _stepper(model, inputs: dict, lr: float):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    def step() -> None:
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _connectors(model, inputs: dict):
    """Forward + backward of the connectors alone on the step's features (a tuned encoder's already computed)."""
    with torch.no_grad():
        features = model.encode_media(inputs["features"], inputs.get("encoder_inputs"))
    features = {m: (x.detach(), mask) for m, (x, mask) in features.items()}

    def run() -> None:
        projected = model.project(features)
        sum(tokens.float().sum() for tokens, _ in projected.values()).backward()
        model.zero_grad(set_to_none=True)

    return run


def _tuned_encoders(model, inputs: dict):
    def run() -> None:
        features = model.encode_media({}, inputs["encoder_inputs"])
        sum(x.float().sum() for x, _ in features.values()).backward()
        model.zero_grad(set_to_none=True)

    return run


def _median_ms(runs: dict, warmup: int, repeats: int) -> dict[str, float]:
    """Interleaved repeats of every run, warm-up left out: medians in milliseconds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: round(statistics.median(t), 2) for name, t in times.items()}


def recipes_section(work: Path, tiny_llm: str, warmup: int, repeats: int, batch: int = 4) -> dict:
    from emoreason.recipe_twins import projector_recipes, twin_configs

    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.features.featurizer import Featurizer
    from emoreason.model.loading import build_model

    sample = generate_dataset(work / "clip", SyntheticConfig(num_per_class=1, classes=["happy"], seconds=1.0))[0]
    clip = work / "clip" / sample.media.video
    encoders_dir = work / "encoders"
    plain = _plain_mlp(tiny_llm, encoders_dir)
    result: dict = {"batch": batch, "repeats": repeats, "torch_threads": torch.get_num_threads(), "recipes": {}}
    for recipe in projector_recipes(ROOT / "configs" / "recipes"):
        train = twin_configs(recipe, tiny_llm, encoders_dir, work / recipe.stem).train
        model, processor = build_model(train.model, seed=0)
        featurizer = Featurizer(train.model.encoders, train.model.media, tuned=model.tuned_encoders)
        inputs = _batch(featurizer, processor, train.model.modalities, sample, clip, batch)
        plain_inputs = _as_plain(inputs, plain)
        runs = {"step": _stepper(model, inputs, train.optim.learning_rate), "mlp_step": _stepper(plain, plain_inputs, 1e-3),
                "connectors": _connectors(model, inputs)}
        if inputs.get("encoder_inputs"):
            runs["tuned_encoder"] = _tuned_encoders(model, inputs)
        ms = _median_ms(runs, warmup, repeats)
        entry = {
            "tokens": list(inputs["input_ids"].shape),
            "media_positions_per_item": int((inputs["media_ids"][0] != 0).sum()),
            "step_ms": ms["step"],
            "mlp_step_ms": ms["mlp_step"],
            "step_ratio_vs_mlp": round(ms["step"] / ms["mlp_step"], 3),
            "connectors_ms": ms["connectors"],
            "connectors_share": round(ms["connectors"] / ms["step"], 3),
        }
        if "tuned_encoder" in ms:
            entry |= {"tuned_encoder_ms": ms["tuned_encoder"], "tuned_encoder_share": round(ms["tuned_encoder"] / ms["step"], 3)}
        result["recipes"][recipe.stem] = entry
    return result
