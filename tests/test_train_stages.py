"""align trains projectors only; instruct continues from it with LoRA; modality dropout drops placeholders."""

import torch

from emoreason.constants import MEDIA_INDEX
from emoreason.model.loading import load_model
from emoreason.train.config import load_train_config
from emoreason.train.run import setup, train


def lora_and_projector_state(model):
    lora = {k: v.clone() for k, v in model.named_parameters() if "lora_" in k}
    projectors = {k: v.clone() for k, v in model.named_parameters() if not k.startswith("llm.")}
    return lora, projectors


def test_align_then_instruct(tiny_data, tmp_path):
    align_cfg = load_train_config("configs/train/tiny_align.yaml", tiny_data.train_overrides(tmp_path / "align") + ["optim.max_steps=4"])
    run = setup(align_cfg)
    trainable = {k for k, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all(not k.startswith("llm.") for k in trainable), "align must not train the LLM or its LoRA"
    lora_before, proj_before = lora_and_projector_state(run.model)
    aligned = train(run)
    model, _ = load_model(aligned)
    lora_after, proj_after = lora_and_projector_state(model)
    assert all(torch.equal(lora_before[k], lora_after[k]) for k in lora_before)
    assert any(not torch.equal(proj_before[k], proj_after[k]) for k in proj_before)

    instruct_cfg = load_train_config(
        "configs/train/tiny_instruct.yaml",
        tiny_data.train_overrides(tmp_path / "instruct") + ["optim.max_steps=4", f"init_from={aligned}"],
    )
    run = setup(instruct_cfg)
    _, proj_start = lora_and_projector_state(run.model)
    assert all(torch.equal(proj_start[k], proj_after[k]) for k in proj_after), "instruct must start from the aligned projectors"
    trainable = {k for k, p in run.model.named_parameters() if p.requires_grad}
    assert any("lora_" in k for k in trainable) and not any(k.startswith("llm.") and "lora_" not in k for k in trainable)
    final = train(run)
    tuned, _ = load_model(final)
    lora_tuned, _ = lora_and_projector_state(tuned)
    assert any(not torch.equal(lora_after[k], lora_tuned[k]) for k in lora_after)


def test_modality_dropout_removes_placeholders_with_features(tiny_data, tmp_path):
    cfg = load_train_config(
        "configs/train/tiny_instruct.yaml", tiny_data.train_overrides(tmp_path) + ["data.modality_dropout=0.5"]
    )
    run = setup(cfg)
    dataset = run.train_dataset
    kept_counts = []
    for index in range(len(dataset)):
        item = dataset[index]
        kept = set(item["features"])
        kept_counts.append(len(kept))
        assert kept, "at least one modality always stays"
        for modality, media_index in MEDIA_INDEX.items():
            if modality in ("audio", "face", "video", "frame"):
                assert (media_index in item["media_ids"]) == (modality in kept)
    assert min(kept_counts) < 4 and max(kept_counts) > 1
