"""The `trainable` key: a stage trains only the module groups it names and everything else comes out of training
bit-identical (Face-LLaVA's stage 1 trains only its landmark modules); stage 2 then trains the rest."""

from __future__ import annotations

import pytest
import torch

from emoreason.recipe_twins import RECIPES_DIR, twin_configs, twin_overrides

FACE_LLAVA = RECIPES_DIR / "face_llava.yaml"


@pytest.fixture(scope="module")
def face_llava_prep(tiny_llm_dir, tmp_path_factory):
    """Eight synthetic clips with their landmarks, prepped with the Face-LLaVA twin's encoders, as conversations."""
    from emoreason.data_prep.instructions import build_conversations
    from emoreason.data_prep.runner import run_prep
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.schema import load_samples, write_samples

    work = tmp_path_factory.mktemp("face_llava_stages")
    generate_dataset(work, SyntheticConfig(num_per_class=2, seconds=1.0, with_audio=False))
    configs = twin_configs(FACE_LLAVA, tiny_llm_dir, tmp_path_factory.getbasetemp() / "twin_encoders", work)
    configs.prep.workers, configs.prep.progress = 1, False  # eight clips: worker start-up would cost more than them
    run_prep(configs.prep)
    prepped = load_samples(work / "prep" / "samples.jsonl")
    labels = sorted({s.targets.emotion for s in prepped})
    write_samples(work / "prep" / "train.jsonl", build_conversations(prepped, "recognition", modalities=["face"], labels=labels))
    return work / "prep" / "train.jsonl"


def parameters(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_stage1_trains_only_the_landmark_modules_then_stage2_the_rest(face_llava_prep, tiny_llm_dir, tmp_path):
    from emoreason.model.loading import load_model
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup, train

    fill = [f"model.llm={tiny_llm_dir}", f"data.train={face_llava_prep}", "optim.max_steps=2", "optim.batch_size=4",
            "optim.grad_accum=1", "optim.save_steps=100"]
    run = setup(load_train_config(str(FACE_LLAVA), twin_overrides(FACE_LLAVA) + fill + [f"optim.output_dir={tmp_path / 's1'}"]))
    assert run.cfg.trainable == ["landmark_attention"] and run.model.landmark_attention is not None
    trained = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trained == {n for n, _ in run.model.named_parameters() if n.startswith("landmark_attention.")}
    before = parameters(run.model)
    stage1, _ = load_model(train(run))
    after = parameters(stage1)
    assert after.keys() == before.keys()
    frozen = [n for n in before if n not in trained]
    assert any(".lora_" in n for n in frozen) and any(n.startswith("projectors.face.") for n in frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen), [n for n in frozen if not torch.equal(before[n], after[n])]
    assert all(not torch.equal(before[n], after[n]) for n in trained if n.endswith("weight"))

    stage2_recipe = RECIPES_DIR / "face_llava_stage2.yaml"
    stage2_fill = fill[1:] + [f"init_from={tmp_path / 's1' / 'model'}", f"optim.output_dir={tmp_path / 's2'}"]
    run = setup(load_train_config(str(stage2_recipe), twin_overrides(stage2_recipe) + stage2_fill))
    trained = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert {n for n in trained if n.startswith("llm.")} == {n for n in trained if ".lora_" in n} != set()
    assert any(n.startswith("projectors.face.") for n in trained) and any(n.startswith("landmark_attention.") for n in trained)
    assert all(torch.equal(p, after[n]) for n, p in run.model.named_parameters())  # stage 2 starts from stage 1


def test_trainable_names_are_checked_by_key(face_llava_prep, tiny_llm_dir, tmp_path):
    from emoreason.config import ConfigError
    from emoreason.train.config import load_train_config

    fill = twin_overrides(FACE_LLAVA) + [f"model.llm={tiny_llm_dir}", f"data.train={face_llava_prep}",
                                        f"optim.output_dir={tmp_path}"]
    for bad, expected in [("[landmark_atention]", "module groups of this model"), ("[prefusion]", "module groups of this model"),
                          ("[]", "a non-empty list"), ("[landmark_attention,lora]", "no 'lora' for stage align")]:
        with pytest.raises(ConfigError, match="key 'trainable'") as info:
            load_train_config(str(FACE_LLAVA), fill + [f"trainable={bad}"])
        assert expected in str(info.value) and f"override trainable={bad}" in str(info.value)  # names who set it
    cfg = load_train_config(str(FACE_LLAVA), fill + ["trainable=[landmark_attention,projectors.face]", "stage=instruct"])
    assert cfg.trainable == ["landmark_attention", "projectors.face"]
