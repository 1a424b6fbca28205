"""`emoreason export`: the merged checkpoint equals base + LoRA delta and serves the same answers."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from serving_models import exported_model_dir, trained_model_dir

from emoreason.model.features import cached_features
from emoreason.model.generation import collate_prompts, generate_texts, prompt_turns
from emoreason.model.loading import MODEL_FILE, load_model
from emoreason.schema import load_samples
from emoreason.serving.export import export_model, main

# Merging adds scale * B @ A into W once instead of per forward: in float32 the logits move by
# rounding only. Measured max |diff| on the tiny model ~2e-5; the trained LoRA delta itself moves
# them by ~8, so 1e-4 still catches a missing or doubled delta.
LOGITS_ATOL = 1e-4


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    return trained_model_dir(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    return exported_model_dir(tiny_data, tmp_path_factory)


def test_layout_and_config(trained, exported):
    meta = json.loads((exported / MODEL_FILE).read_text())
    original = json.loads((trained / MODEL_FILE).read_text())
    assert meta["config"]["llm"] == "llm" and meta["config"]["lora"] is None
    unchanged = {k: v for k, v in original["config"].items() if k not in ("llm", "lora")}
    assert {k: v for k, v in meta["config"].items() if k not in ("llm", "lora")} == unchanged
    assert meta["feature_dims"] == original["feature_dims"]
    assert not (exported / "adapter").exists()
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (exported / "llm" / name).exists(), name
    # Staging folders are renamed away or removed, never left beside the export.
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(f".{exported.name}.")]


def test_merged_weights_equal_base_plus_lora_delta(tiny_data, trained, exported):
    base = load_file(f"{tiny_data.llm}/model.safetensors")
    merged = load_file(str(exported / "llm" / "model.safetensors"))
    adapter = load_file(str(trained / "adapter" / "adapter_model.safetensors"))
    lora = json.loads((trained / MODEL_FILE).read_text())["config"]["lora"]
    scale = lora["alpha"] / lora["r"]
    assert set(merged) == set(base)
    targeted = 0
    for name, weight in base.items():
        prefix = "base_model.model." + name.removesuffix(".weight")
        if f"{prefix}.lora_A.weight" in adapter:
            delta = scale * adapter[f"{prefix}.lora_B.weight"] @ adapter[f"{prefix}.lora_A.weight"]
            assert delta.abs().max() > 1e-4, f"{name}: the trained LoRA delta is ~0; the test would prove nothing"
            torch.testing.assert_close(merged[name], weight + delta, rtol=0, atol=1e-6)
            targeted += 1
        else:
            assert torch.equal(merged[name], weight), f"{name} is not a LoRA target but changed"
    assert targeted == len(adapter) // 2


def test_export_gives_the_same_logits_and_greedy_text(tiny_data, trained, exported):
    unmerged, processor = load_model(trained)
    merged, merged_processor = load_model(exported)
    assert not hasattr(merged.llm, "peft_config")
    samples = load_samples(tiny_data.heldout)[:8]
    modalities = merged.model_config.modalities
    prompts = [(prompt_turns(s.conversations), cached_features(s, tiny_data.heldout.parent, modalities)) for s in samples]
    batch = collate_prompts(processor, prompts)
    with torch.no_grad():
        logits_a = unmerged(batch["input_ids"], batch["attention_mask"], batch["media_ids"], features=batch["features"]).logits
        logits_b = merged(batch["input_ids"], batch["attention_mask"], batch["media_ids"], features=batch["features"]).logits
    real = batch["attention_mask"].bool()
    assert (logits_a[real] - logits_b[real]).abs().max() < LOGITS_ATOL
    texts = generate_texts(unmerged, processor, prompts, max_new_tokens=8)
    assert generate_texts(merged, merged_processor, prompts, max_new_tokens=8) == texts


def test_exported_llm_loads_on_its_own(trained, exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    llm = AutoModelForCausalLM.from_pretrained(str(exported / "llm"))
    tokenizer = AutoTokenizer.from_pretrained(str(exported / "llm"))
    assert tokenizer.chat_template
    messages = [{"role": "user", "content": "Which emotion? happy or sad."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    unmerged, _ = load_model(trained)
    with torch.no_grad():
        torch.testing.assert_close(llm(ids).logits, unmerged.llm(input_ids=ids).logits, rtol=0, atol=LOGITS_ATOL)


def test_export_is_relocatable(tmp_path, exported):
    moved = tmp_path / "elsewhere" / "served"
    shutil.copytree(exported, moved)
    model, _ = load_model(moved)
    assert model.model_config.llm == str(moved / "llm")


def test_cli_replaces_an_export_and_refuses_other_folders(tmp_path, trained, capsys):
    out = tmp_path / "served"
    assert main(["--model", str(trained), "--out", str(out)]) == 0
    (out / "stale.txt").write_text("from an earlier export")
    capsys.readouterr()
    assert main([str(trained), "--out", str(out)]) == 0  # the old positional spelling, for one release
    err = capsys.readouterr().err
    assert "deprecated" in err and f"--model {trained}" in err
    assert not (out / "stale.txt").exists() and (out / MODEL_FILE).exists()

    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    assert main(["--model", str(trained), "--out", str(precious)]) == 2
    assert "not an emoreason model directory" in capsys.readouterr().err
    assert [p.name for p in precious.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="model directory itself"):
        export_model(trained, trained)
