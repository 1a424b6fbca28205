"""Every projector recipe in configs/recipes/ on its tiny twin (emoreason/recipe_twins.py says how a recipe joins):
it builds; its processor lays out exactly the recipe's tokens for a synthetic clip; two training steps lower the
loss; the saved model reloads with identical logits; and the `hf` and `vllm` backends answer alike.

One vLLM engine serves every twin: they share the tiny LLM, and the hf/vllm check runs on each twin's export
before any training (fresh LoRA: the merged LLM is the shared one, which the test asserts).
"""

from __future__ import annotations

import copy

import pytest
import torch

from emoreason.recipe_twins import (
    media_runs,
    projector_recipes,
    stage2_recipes,
    token_layout,
    training_item,
    twin_configs,
)

RECIPES = projector_recipes()
QUESTION = "Which emotion does the person express?"


@pytest.fixture(scope="session")
def twin_clips(tmp_path_factory):
    """Two synthetic clips with a drawn face, a voice and a subtitle."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("twin_clips")
    samples = generate_dataset(root, SyntheticConfig(num_per_class=1, classes=["happy", "sad"], seconds=1.0))
    return [(s, root / s.media.video) for s in samples]


_twins: dict[str, dict] = {}


class SharedVLLM:
    """One vLLM engine on the tiny LLM; `serving(export)` gives a VLLMEngine for another twin's export that
    submits to the same engine (its own embedder, processor and featurizer, the engine's LLM)."""

    def __init__(self, exported):
        from safetensors.torch import load_file

        from emoreason.serving.vllm_engine import VLLMEngine

        self.engine = VLLMEngine(exported, max_batch_size=4)
        self.llm_weights = load_file(str(exported / "llm" / "model.safetensors"))
        self._views = []

    def serving(self, exported):
        from emoreason.model.prompt_embedder import load_prompt_embedder
        from emoreason.serving.embed_batcher import EmbedBatcher

        view = copy.copy(self.engine)
        view.embedder, view.processor, _ = load_prompt_embedder(exported)
        view._init_common(view.embedder.model_config, exported, self.engine.max_batch_size, None)
        view._batcher = EmbedBatcher(view.embedder, view.processor.pad_id, self.engine.max_batch_size)
        self._views.append(view)
        return view

    def close(self):
        # The views share the engine's VLLMRuntime: only the engine closes it.
        for view in self._views:
            view._batcher.close()
        self.engine.close()


@pytest.fixture(scope="module")
def shared_vllm(tiny_llm_dir, tmp_path_factory):
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    import os

    from emoreason.model.loading import save_model
    from emoreason.serving.export import export_model

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the tiny model needs a few MiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    entry = twin(RECIPES[0], tiny_llm_dir, tmp_path_factory)
    root = tmp_path_factory.mktemp("shared_vllm")
    shared = SharedVLLM(export_model(save_model(entry["model"], entry["processor"], root / "model"), root / "export"))
    yield shared
    shared.close()


def twin(recipe, tiny_llm_dir, tmp_path_factory):
    """The recipe's twin configs, fresh model + processor, and the features of the test clips (built once)."""
    from emoreason.features.featurizer import Featurizer
    from emoreason.model.loading import build_model

    if recipe.name not in _twins:
        work = tmp_path_factory.mktemp(f"twin_{recipe.stem}")
        configs = twin_configs(recipe, tiny_llm_dir, tmp_path_factory.getbasetemp() / "twin_encoders", work)
        model, processor = build_model(configs.train.model, seed=0)
        # A recipe's LoRA-tuned encoder (ExpLLM's) runs from the model, as serving runs it (Featurizer tuned=).
        featurizer = Featurizer(configs.train.model.encoders, configs.train.model.media, tuned=model.tuned_encoders)
        _twins[recipe.name] = {"configs": configs, "model": model, "processor": processor, "work": work,
                               "featurizer": featurizer}
    return _twins[recipe.name]


def clip_batch(entry, clips, answer: str | None = "happy"):
    """A training batch of the clips (features, tokens, labels) as the dataset and collator build it."""
    from emoreason.train.collator import EmotionCollator

    modalities = entry["configs"].train.model.modalities
    turns = [{"role": "user", "content": QUESTION}] + ([{"role": "assistant", "content": answer}] if answer else [])
    items = []
    for sample, path in clips:
        item = training_item(entry["featurizer"], entry["processor"], modalities, sample, path, turns, generation_prompt=answer is None)
        given = set(item["features"]) | set(item["encoder_inputs"])
        assert given == set(modalities), f"the test clip lacks {set(modalities) - given}"
        items.append(item)
    return EmotionCollator(entry["processor"].pad_id)(items)


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_twin_lays_out_the_recipes_tokens(recipe, tiny_llm_dir, tmp_path_factory, twin_clips):
    entry = twin(recipe, tiny_llm_dir, tmp_path_factory)
    batch = clip_batch(entry, twin_clips[:1], answer=None)
    assert media_runs(batch["media_ids"][0].tolist()) == token_layout(recipe)
    assert entry["configs"].train.model.prompt is not None, f"{recipe.name}: no model.prompt template"


SUBTITLE_RECIPES = [p for p in RECIPES if "{subtitle}" in p.read_text()]


@pytest.mark.parametrize("recipe", SUBTITLE_RECIPES, ids=[p.stem for p in SUBTITLE_RECIPES])
def test_a_subtitle_is_shown_once_in_the_recipes_words(recipe, tiny_llm_dir, tmp_path_factory, twin_clips, tmp_path):
    """A template with a {subtitle} slot beside an instruction that already shows the subtitle (`emoreason instruct`'s
    conversations, infer's default prompt): the template's line replaces the instruction's. A subtitle the user quotes
    in their own words stays there, and the slot stays empty."""
    from emoreason.data_prep.instructions.build import build_conversations
    from emoreason.model.features import training_inputs
    from emoreason.model.generation import prompt_turns
    from emoreason.model.prompt_template import sample_prompt_fields
    from emoreason.serving.infer import sample_request

    entry = twin(recipe, tiny_llm_dir, tmp_path_factory)
    processor, featurizer, modalities = entry["processor"], entry["featurizer"], entry["configs"].train.model.modalities
    sample, path = twin_clips[0]
    subtitle = sample.subtitle.strip()
    features, images = training_inputs(featurizer, {"video": path}, modalities, landmarks=sample.landmarks)
    counts = {m: f.shape[0] for m, f in features.items()} | {m: featurizer.tuned[m].num_tokens(x) for m, x in images.items()}

    def prompt_text(turns, fields) -> str:
        encoded = processor.encode(turns, counts, generation_prompt=True, fields=fields)
        return processor.tokenizer.decode([t for t, m in zip(encoded.input_ids, encoded.media_ids) if m == 0])

    recipes_line = processor.prompt.subtitle.format(subtitle=subtitle).strip()
    built = build_conversations([sample], "recognition", modalities=["video"], labels=["happy", "sad"])[0]
    request = sample_request(sample.model_copy(update={"conversations": None}), ["happy", "sad"], ["video"], tmp_path, 4)
    for turns, fields in (([t.model_dump() for t in prompt_turns(built.conversations)], sample_prompt_fields(built)),
                          (request.messages, request.prompt_fields)):
        text = prompt_text(turns, fields)
        assert text.count(subtitle) == 1 and recipes_line in text, text
        assert turns[0]["content"].splitlines()[-1] in text  # the question itself stays
    quoted = [{"role": "user", "content": f'She says "{subtitle}" Which emotion does she express?'}]
    text = prompt_text(quoted, sample_prompt_fields(sample))
    assert text.count(subtitle) == 1 and recipes_line not in text, text


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_twin_hf_and_vllm_answer_alike(recipe, tiny_llm_dir, tmp_path_factory, twin_clips, shared_vllm):
    from safetensors.torch import load_file

    from emoreason.model.loading import save_model
    from emoreason.model.prompt_template import sample_prompt_fields
    from emoreason.serving.engine import GenerationRequest, MediaInput
    from emoreason.serving.export import export_model
    from emoreason.serving.hf_engine import HFEngine

    entry = twin(recipe, tiny_llm_dir, tmp_path_factory)
    fresh = save_model(entry["model"], entry["processor"], entry["work"] / "fresh")  # before any training step
    exported = export_model(fresh, entry["work"] / "export")
    merged, shared = load_file(str(exported / "llm" / "model.safetensors")), shared_vllm.llm_weights
    assert merged.keys() == shared.keys() and all(torch.equal(merged[k], shared[k]) for k in merged)
    requests = [GenerationRequest(messages=[{"role": "user", "content": QUESTION}], media=[MediaInput("video", path)],
                                  max_tokens=8, prompt_fields=sample_prompt_fields(sample)) for sample, path in twin_clips]
    hf = HFEngine(exported, max_batch_size=2).generate(requests)
    vllm = shared_vllm.serving(exported).generate(requests)
    assert [c.text for c in vllm] == [c.text for c in hf]
    assert [c.prompt_tokens for c in vllm] == [c.prompt_tokens for c in hf]


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_twin_trains_and_reloads_with_identical_logits(recipe, tiny_llm_dir, tmp_path_factory, twin_clips):
    from emoreason.model.loading import load_model, save_model

    entry = twin(recipe, tiny_llm_dir, tmp_path_factory)
    model = copy.deepcopy(entry["model"]).train()
    batch = clip_batch(entry, twin_clips)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "media_ids", "labels", "features", "encoder_inputs")
              if k in batch}
    optim = entry["configs"].train.optim
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim.learning_rate, weight_decay=optim.weight_decay)
    losses = []
    for _ in range(3):  # two steps, then the loss after them
        loss = model(**inputs).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[2] < losses[1] < losses[0], losses
    # Inference state, as load_model returns it (MultiheadAttention's fused fast path, taken only then, rounds
    # differently at ~1e-6): eval mode, nothing requiring grad.
    saved = save_model(model.eval().requires_grad_(False), entry["processor"], entry["work"] / "trained")
    reloaded, processor = load_model(saved)
    assert processor.prompt == entry["configs"].train.model.prompt
    assert processor.tokenizer.chat_template == entry["processor"].tokenizer.chat_template
    with torch.no_grad():
        before = model(**inputs).logits
        after = reloaded(**inputs).logits
    assert torch.equal(before, after)


@pytest.mark.parametrize("recipe", stage2_recipes(), ids=[p.stem for p in stage2_recipes()])
def test_stage2_recipe_loads_on_its_stage1_twin(recipe, tiny_llm_dir, tmp_path_factory, tmp_path):
    from emoreason.model.loading import save_model
    from emoreason.train.config import load_train_config
    from emoreason.recipe_twins import STAGE2_LINE, twin_overrides

    first = recipe.with_name(STAGE2_LINE.search(recipe.read_text()).group(1))
    entry = twin(first, tiny_llm_dir, tmp_path_factory)
    model_dir = save_model(entry["model"], entry["processor"], tmp_path / "stage1")
    (tmp_path / "train.jsonl").write_text("")
    cfg = load_train_config(str(recipe), twin_overrides(recipe) + [f"init_from={model_dir}", f"data.train={tmp_path / 'train.jsonl'}",
                                                                   f"optim.output_dir={tmp_path / 'out'}"])
    assert cfg.model.prompt == entry["configs"].train.model.prompt
    import yaml

    stage1_lr = yaml.safe_load(first.read_text())["optim"]["learning_rate"]
    assert yaml.safe_load(recipe.read_text())["optim"]["learning_rate"] < stage1_lr, "stage 2 fine-tunes at a lower rate"
