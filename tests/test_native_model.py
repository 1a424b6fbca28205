"""The native model kind: per-component training choices are real, save/reload and LoRA export keep the logits."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from emoreason.config import ConfigError
from emoreason.media.video import FrameSampling
from emoreason.native.arch import component_of
from emoreason.native.config import ComponentTraining, NativeModelConfig
from emoreason.native.conversation import NativeConversation, collate
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.model import NativeModel
from emoreason.native.processor import NativeProcessor
from native_twins import twin_dir, write_test_clip

# One choice of each mode per backbone; the LLM is LoRA'd on two of its projections.
CHOICES = {
    "qwen2_5_vl": {"llm": ComponentTraining("lora", ["q_proj", "v_proj"]), "vision": ComponentTraining("lora", ["qkv"]),
                   "connector": ComponentTraining("full")},
    "qwen2_5_omni_thinker": {"llm": ComponentTraining("lora"), "connector": ComponentTraining("full"),
                             "vision": ComponentTraining("frozen"), "audio": ComponentTraining("lora", ["q_proj", "v_proj"])},
    "internvl": {"llm": ComponentTraining("full"), "vision": ComponentTraining("lora"), "connector": ComponentTraining("frozen")},
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_clip(tmp_path_factory.mktemp("native_model_clip") / "clip.mp4")


def _batch(processor: NativeProcessor, clip, answer: str = "happy") -> dict:
    media = NativeFeaturizer(processor, FrameSampling(num_frames=4)).featurize({"video": clip}).inputs
    turns = [{"role": "user", "content": "<video> Which emotion?"}, {"role": "assistant", "content": answer}]
    return collate(processor, [NativeConversation(processor).encode(turns, media)])


def _snapshot(model: NativeModel) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.backbone.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CHOICES))
def test_component_choices_train_save_reload_export(kind, tmp_path_factory, tmp_path, clip):
    base = twin_dir(tmp_path_factory, kind)
    cfg = NativeModelConfig(base=base, components=CHOICES[kind])
    torch.manual_seed(0)
    model = NativeModel.build(cfg)
    processor = NativeProcessor.from_pretrained(base)
    batch = _batch(processor, clip)
    before = _snapshot(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    model.train()
    for _ in range(8):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3, losses

    modes = {c: cfg.mode(c) for c in model.arch.components}
    changed = {c: False for c in modes}
    has_adapter = {c: False for c in modes}
    for name, param in model.backbone.named_parameters():
        clean = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
        if "lora_" in name:
            component = component_of(model.arch, clean.split(".lora_")[0])
            has_adapter[component] = True
            changed[component] |= not torch.equal(param, before[name])
            continue
        component = component_of(model.arch, clean)
        same = torch.equal(param, before[name])
        if modes[component] in ("frozen", "lora"):
            assert same, f"{name} of {modes[component]} component {component} changed"
        else:
            changed[component] |= not same
    for component, mode in modes.items():
        assert has_adapter[component] == (mode == "lora"), component
        assert changed[component] == (mode != "frozen"), (component, mode)

    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
    saved = model.save_pretrained(tmp_path / "model", processor)
    reloaded, reloaded_processor = NativeModel.from_pretrained(saved)
    assert sorted(p.name for p in saved.iterdir() if p.suffix == ".safetensors" or p.is_dir()) == \
        sorted(["adapter", "full.safetensors"])
    reloaded_batch = _batch(reloaded_processor, clip)
    assert reloaded_batch["input_ids"].tolist() == batch["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(reloaded(**reloaded_batch).logits, logits)

    exported = reloaded.export(tmp_path / "export", reloaded_processor)
    plain = tf.AutoModelForImageTextToText.from_pretrained(exported).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, logits, atol=1e-4, rtol=1e-4)
    assert NativeProcessor.from_pretrained(exported).tokenizer.chat_template == processor.tokenizer.chat_template


def test_bad_components_and_targets_are_named(tmp_path_factory):
    vl = twin_dir(tmp_path_factory, "qwen2_5_vl")
    with pytest.raises(ConfigError, match=r"components.audio.*qwen2_5_vl has no audio component"):
        NativeModel.build(NativeModelConfig(base=vl, components={"llm": ComponentTraining("lora"), "audio": ComponentTraining("lora")}))
    with pytest.raises(ConfigError, match=r"components.vision.lora_targets.*'q_proj' matches no linear layer.*'qkv'"):
        NativeModel.build(NativeModelConfig(base=vl, components={"vision": ComponentTraining("lora", ["q_proj"])}))
    with pytest.raises(ConfigError, match=r"modalities.*qwen2_5_vl has no audio tower"):
        NativeModelConfig(base=vl, modalities=["audio"]).check_against_backbone("qwen2_5_vl")
    with pytest.raises(ConfigError, match=r"components.*at least one component"):
        NativeModelConfig(base=vl, components={"llm": ComponentTraining("frozen")})
    with pytest.raises(ConfigError, match=r"components.eyes"):
        NativeModelConfig(base=vl, components={"eyes": ComponentTraining("lora")})
    with pytest.raises(ConfigError, match=r"model.base.*'qwen2' is not a supported native backbone"):
        NativeModelConfig(base=vl).check_against_backbone("qwen2")


def test_config_loads_from_yaml_data_and_names_bad_keys():
    from emoreason.config import config_from_dict, load_yaml

    data = load_yaml("""
base: Qwen/Qwen2.5-VL-7B-Instruct
components:
  llm: {mode: lora, lora_targets: [q_proj, k_proj, v_proj, o_proj]}
  vision: {mode: lora}
  connector: {mode: full}
lora: {r: 16, alpha: 32, dropout: 0.0}
frames: {num_frames: 16}
video_max_pixels: 100352
""")
    cfg = config_from_dict(NativeModelConfig, data)
    assert cfg.mode("vision") == "lora" and cfg.mode("audio") == "frozen" and cfg.frames.num_frames == 16
    with pytest.raises(ConfigError, match=r"components.llm.mode.*one of \['frozen', 'lora', 'full'\]"):
        config_from_dict(NativeModelConfig, data | {"components": {"llm": {"mode": "half"}}})
    with pytest.raises(ConfigError, match=r"components.vision.lora_targets.*unset unless mode is lora"):
        config_from_dict(NativeModelConfig, data | {"components": {"llm": {"mode": "lora"}, "vision": {"mode": "full", "lora_targets": ["qkv"]}}})


def test_frame_count_over_the_processor_limit_is_a_config_error(tmp_path_factory):
    from emoreason.native.model import build_processor

    vl = twin_dir(tmp_path_factory, "qwen2_5_vl")
    assert build_processor(NativeModelConfig(base=vl, frames=FrameSampling(num_frames=16), video_max_pixels=56 * 56)).video_settings.max_pixels == 56 * 56
    with pytest.raises(ConfigError, match=r"model.frames.num_frames.*800 frames is over the video processor's max_frames=768"):
        build_processor(NativeModelConfig(base=vl, frames=FrameSampling(num_frames=800)))


def test_gradient_checkpointing_keeps_the_gradients(tmp_path_factory, clip):
    base = twin_dir(tmp_path_factory, "qwen2_5_vl")
    processor = NativeProcessor.from_pretrained(base)
    batch = _batch(processor, clip)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = NativeModel.build(NativeModelConfig(base=base, components={"llm": ComponentTraining("lora"), "vision": ComponentTraining("full")}))
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**batch).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_face_modality_needs_a_faces_section_and_an_image_backbone():
    from emoreason.features.media_config import FaceCropConfig

    with pytest.raises(ConfigError, match=r"modalities.*face only with a faces: section"):
        NativeModelConfig(base="x", modalities=["video", "face"])
    cfg = NativeModelConfig(base="x", modalities=["video", "face"], faces=FaceCropConfig())
    assert cfg.check_against_backbone("internvl").model_type == "internvl"


def test_the_thinker_loads_from_a_full_omni_checkpoint(tmp_path_factory, tmp_path):
    from emoreason.native.model import load_backbone

    thinker = tf.AutoModelForImageTextToText.from_pretrained(twin_dir(tmp_path_factory, "qwen2_5_omni_thinker"))
    # A full Qwen2.5-Omni checkpoint without its speech half: thinker weights under "thinker.".
    full = tf.Qwen2_5OmniForConditionalGeneration(tf.Qwen2_5OmniConfig(thinker_config=thinker.config.to_dict(), enable_audio_output=False))
    full.thinker.load_state_dict(thinker.state_dict())
    full.save_pretrained(tmp_path / "omni")
    loaded, arch = load_backbone(str(tmp_path / "omni"))
    assert type(loaded).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration" and arch.model_type == "qwen2_5_omni_thinker"
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, thinker(input_ids=ids).logits)
