"""Tiny twins of the projector recipes in configs/recipes/: CPU-sized copies with the recipes' connector classes,
token layouts, LoRA and prompt formats, for tests (tests/test_projector_recipes.py, tests/test_trainable_groups.py)
and benchmarks (scripts/bench_recipes.py).

How a recipe joins the harness (nothing else to register):
- `configs/recipes/NAME.yaml` has a `model.projectors` block, and its encoders live beside it in
  `configs/recipes/NAME.prep.yaml` (the prep config; training reads them back from prep's featurizer.json).
- The prep file has a line `# tiny twin: KEY=VALUE ...` whose values may say `tiny:KIND`: the path of the tiny
  random-weight encoder `emoreason.encoders.tiny.build_tiny(KIND)` (clip-vision, vitmae, videomae, hubert, ...).
- The train recipe has a line `# tiny twin: KEY=VALUE ...` (overrides that make it a CPU run: dtype, dropout,
  lr, ...; `model.llm` is always the tiny LLM, which every twin shares so one vLLM engine serves them all) and
  a line `# token layout (tiny twin): MODALITY=COUNT ...`: the media positions the twin's processor must
  produce for the test clip, modality by modality in prompt order (a pre-fusion token counts as `fusion`).
- A stage-2 recipe (`init_from`) has a line `# stage 2 of: NAME.yaml`: it is loaded on that twin's saved model.

Like emoreason.demo, this module sits above the CLIs' packages: it imports data_prep and train (lazily, in the
functions that need them), so nothing in the core imports it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

RECIPES_DIR = Path("configs") / "recipes"
"""Where the recipes are, relative to the working directory (the repository root), as the demo finds its configs."""
TWIN_LINE = re.compile(r"^# tiny twin: (.+)$", re.MULTILINE)
LAYOUT_LINE = re.compile(r"^# token layout \(tiny twin\): (.+)$", re.MULTILINE)
STAGE2_LINE = re.compile(r"^# stage 2 of: (\S+)$", re.MULTILINE)
TINY_VALUE = re.compile(r"tiny:([\w-]+)")


def prep_path(recipe: Path) -> Path:
    return recipe.with_name(recipe.stem + ".prep.yaml")


def projector_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Path]:
    """Train recipes with projectors and a prep file beside them (stage-2 recipes excluded)."""
    out = []
    for path in sorted(Path(recipes_dir).glob("*.yaml")):
        if path.name.endswith(".prep.yaml"):
            continue
        model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
        if "projectors" in model:
            out.append(path)
    return out


def stage2_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Path]:
    return [p for p in sorted(Path(recipes_dir).glob("*.yaml")) if STAGE2_LINE.search(p.read_text())]


def twin_overrides(path: Path) -> list[str]:
    found = TWIN_LINE.search(path.read_text())
    if not found:
        raise AssertionError(f"{path.name}: no '# tiny twin: KEY=VALUE ...' line")
    return found.group(1).split()


def token_layout(recipe: Path) -> list[tuple[str, int]]:
    found = LAYOUT_LINE.search(recipe.read_text())
    if not found:
        raise AssertionError(f"{recipe.name}: no '# token layout (tiny twin): MODALITY=COUNT ...' line")
    return [(m, int(n)) for m, n in (item.split("=") for item in found.group(1).split())]


def media_runs(media_ids: list[int]) -> list[tuple[str, int]]:
    """(modality, positions) for each run of media positions, in sequence order."""
    from emoreason.constants import MEDIA_INDEX

    names = {index: m for m, index in MEDIA_INDEX.items()}
    runs: list[tuple[str, int]] = []
    previous = 0
    for tag in media_ids:
        if tag and tag == previous:
            runs[-1] = (names[tag], runs[-1][1] + 1)
        elif tag:
            runs.append((names[tag], 1))
        previous = tag
    return runs


@dataclasses.dataclass
class TwinConfigs:
    prep: object  # PrepConfig
    train: object  # TrainConfig


def twin_configs(recipe: Path, tiny_llm: str, encoders_dir: Path, work: Path) -> TwinConfigs:
    """The recipe's prep and train configs with their tiny-twin overrides, validated as the CLIs validate them.

    The model block gets prep's encoders and media as `emoreason train` fills them from featurizer.json.
    """
    from emoreason.config import config_from_dict, read_config_data
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.encoders.tiny import build_tiny
    from emoreason.train.config import TrainConfig

    prep_file = prep_path(recipe)
    prep_over = [TINY_VALUE.sub(lambda m: build_tiny(m.group(1), encoders_dir), o) for o in twin_overrides(prep_file)]
    prep_over += [f"input={work / 'samples.jsonl'}", f"output_dir={work / 'prep'}"]
    prep_data = read_config_data(str(prep_file), prep_over)
    prep = config_from_dict(PrepConfig, prep_data, str(prep_file), prep_over)
    fill = [f"model.llm={tiny_llm}", f"data.train={work / 'train.jsonl'}", f"optim.output_dir={work / 'out'}"]
    train_over = twin_overrides(recipe) + fill
    data = read_config_data(str(recipe), train_over)
    data["model"]["encoders"] = prep_data["encoders"]
    data["model"]["media"] = prep_data["media"]
    return TwinConfigs(prep, config_from_dict(TrainConfig, data, str(recipe), train_over))


def training_item(featurizer, processor, modalities, sample, clip: Path, turns, generation_prompt: bool = False) -> dict:
    """One training item of `clip` (features, tuned encoders' images, tokens, labels), as the dataset builds it.

    Tuned encoders' modalities come as images for the model's forward (encoder_inputs); the sample's
    annotations reach the Featurizer as prep gives them (Face-LLaVA's landmarks), and its subtitle and task
    reach a recipe's prompt template."""
    from emoreason.model.features import training_inputs
    from emoreason.model.prompt_template import sample_prompt_fields

    features, images = training_inputs(featurizer, {"video": clip}, modalities, landmarks=sample.landmarks)
    counts = {m: f.shape[0] for m, f in features.items()} | {m: featurizer.tuned[m].num_tokens(x) for m, x in images.items()}
    encoded = processor.encode(turns, counts, generation_prompt=generation_prompt, fields=sample_prompt_fields(sample))
    return {"input_ids": encoded.input_ids, "media_ids": encoded.media_ids, "labels": encoded.labels,
            "features": features, "encoder_inputs": images}
