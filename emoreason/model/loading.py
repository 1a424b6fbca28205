"""Build an EmotionLM from a ModelConfig, and save/load the whole model as one directory.

    model_dir/
      emoreason_model.json     config (LLM id, encoder ids, projector specs, prompt), feature widths
      projectors.safetensors   projector (and pre-fusion) weights
      adapter/                 the LoRA adapter in peft format (absent for projector-only models)
      encoder_adapters.safetensors  the LoRA adapters of the `train.mode: lora` encoders, keyed
                               `<modality>.<peft name>` (absent when every encoder is frozen)
      tokenizer/               the LLM tokenizer with its chat template

The LLM's and the encoders' base weights are referenced by id or path, not copied; `emoreason export`
merges the LLM's LoRA into an `llm/` folder inside the model dir (and each tuned encoder's into
`encoders/<modality>/`) and names them by those relative paths.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from emoreason.atomic import atomic_path, replace_dir, write_text_atomic
from emoreason.config import config_from_dict, config_to_dict
from emoreason.dtypes import torch_dtype
from emoreason.hf_quiet import quiet_hf_progress
from emoreason.model.config import ModelConfig, encoder_hidden_size
from emoreason.model.modeling import EmotionLM, is_tuned_weight
from emoreason.model.processor import EmotionProcessor
from emoreason.model.trust import UserTrust, apply_user_trust, remote_code_refusals

MODEL_FILE = "emoreason_model.json"
PROJECTORS_FILE = "projectors.safetensors"
ENCODER_ADAPTERS_FILE = "encoder_adapters.safetensors"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
FORMAT_VERSION = 1



def make_processor(model: EmotionLM, tokenizer) -> EmotionProcessor:
    fusion = model.model_config.prefusion
    return EmotionProcessor(
        tokenizer,
        model.num_media_tokens,
        system_prompt=model.model_config.system_prompt,
        max_length=model.model_config.max_length,
        fusion_modalities=fusion.modalities if fusion.enabled else (),
        fusion_tokens=fusion.num_tokens if fusion.enabled else 0,
        prompt=model.model_config.prompt,
    )


def _load_llm(config: ModelConfig):
    from transformers import AutoModelForCausalLM

    with quiet_hf_progress():
        llm = AutoModelForCausalLM.from_pretrained(config.llm, dtype=torch_dtype(config.dtype), trust_remote_code=config.trust_remote_code)
    return llm.requires_grad_(False)


def load_tokenizer(source: str | os.PathLike, trust_remote_code: bool):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)


def build_model(config: ModelConfig, seed: int | None = None) -> tuple[EmotionLM, EmotionProcessor]:
    """A fresh model: pretrained LLM (frozen) + new LoRA adapter + freshly initialised projectors."""
    from peft import LoraConfig, get_peft_model

    if seed is not None:
        torch.manual_seed(seed)  # before peft draws LoRA A, so a seed fixes every new weight
    llm = _load_llm(config)
    if config.lora is not None:
        lora = config.lora
        llm = get_peft_model(
            llm,
            LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules, task_type="CAUSAL_LM"),
        )
    dims = {m: encoder_hidden_size(config.encoders[m].model, config.encoders[m].trust_remote_code, config.encoders[m].output)
            for m in config.modalities}
    model = EmotionLM(config, llm, dims).to(torch_dtype(config.dtype))
    attach_tuned_encoders(model)
    return model, make_processor(model, load_tokenizer(config.llm, config.trust_remote_code))


def attach_tuned_encoders(model: EmotionLM, prefix: str = "model.") -> None:
    """A TunedEncoder (fresh LoRA adapters) for every `train.mode: lora` encoder, in the encoder's own dtype.

    ConfigError naming the key for a lora target that matches no linear layer of the encoder, before training.
    """
    from emoreason.encoders.tuned import TunedEncoder

    config = model.model_config
    for m in config.modalities:
        if config.encoders[m].train.trainable:
            model.encoders[m] = TunedEncoder(m, config.encoders[m], prefix).to(model.device)


def save_model(model: EmotionLM, processor: EmotionProcessor, out_dir: str | os.PathLike, state_dict: dict | None = None) -> Path:
    """Write the model files into out_dir, each one atomically; other files there are left alone.

    state_dict: a consolidated full state dict (DeepSpeed ZeRO-3 gathers one); default the model's.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = state_dict if state_dict is not None else model.state_dict()
    meta = {"format_version": FORMAT_VERSION, "config": config_to_dict(model.model_config), "feature_dims": model.feature_dims}
    write_text_atomic(out_dir / MODEL_FILE, json.dumps(meta, indent=2) + "\n")
    own = {k: v.detach().contiguous().cpu() for k, v in state.items() if not k.startswith(("llm.", "encoders."))}
    with atomic_path(out_dir / PROJECTORS_FILE) as tmp:
        save_file(own, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    if len(model.encoders):
        adapters = {}
        for m, tuned in model.encoders.items():
            mine = {k.removeprefix(f"encoders.{m}."): v for k, v in state.items() if k.startswith(f"encoders.{m}.")}
            adapters |= {f"{m}.{k}": v.detach().contiguous().cpu() for k, v in tuned.adapter_state(mine).items()}
        with atomic_path(out_dir / ENCODER_ADAPTERS_FILE) as tmp:
            save_file(adapters, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    if model.model_config.lora is not None:
        adapter_state = {k[len("llm.") :]: v for k, v in state.items() if k.startswith("llm.")}
        with replace_dir(out_dir / ADAPTER_DIR) as staging, quiet_hf_progress():
            model.llm.save_pretrained(str(staging), state_dict=_peft_state(model.llm, adapter_state))
    with replace_dir(out_dir / TOKENIZER_DIR) as staging:
        processor.tokenizer.save_pretrained(str(staging))
    return out_dir


def _peft_state(llm, full_llm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(llm, state_dict=full_llm_state)


def load_trainable_state(model: EmotionLM, model_dir: str | os.PathLike) -> None:
    """Load saved projector and LoRA weights into an already built model (resuming a run)."""
    from peft import set_peft_model_state_dict

    model_dir = Path(model_dir)
    load_own_state(model, model_dir / PROJECTORS_FILE)
    load_encoder_adapters(model, model_dir)
    if model.model_config.lora is not None:
        adapter = load_file(str(model_dir / ADAPTER_DIR / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model.llm, adapter)
        if getattr(result, "unexpected_keys", None):
            raise ValueError(f"{model_dir / ADAPTER_DIR}: unexpected adapter weights {result.unexpected_keys[:5]}")


def load_encoder_adapters(model: EmotionLM, model_dir: Path) -> None:
    """The saved adapters into the model's tuned encoders (which must be the ones that were saved)."""
    path = model_dir / ENCODER_ADAPTERS_FILE
    if not len(model.encoders):
        return
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: {ENCODER_ADAPTERS_FILE} is missing; the config tunes the "
                                f"{sorted(model.encoders)} encoder(s) with LoRA")
    state = load_file(str(path))
    for m, tuned in model.encoders.items():
        mine = {k.removeprefix(f"{m}."): v for k, v in state.items() if k.startswith(f"{m}.")}
        if not mine:
            raise ValueError(f"{path}: no adapters for the {m} encoder")
        tuned.load_adapter_state(mine, str(path))


def load_own_state(model: EmotionLM, path: Path) -> None:
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("llm.", "encoders."))]
    if missing or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")


def read_model_config(model_dir: str | os.PathLike, trust: UserTrust | None = None) -> tuple[ModelConfig, dict[str, int]]:
    """The directory's config with the user's `trust` applied (emoreason.model.trust), and its feature widths.

    A directory asking for code to run (a plug-in face detector, trust_remote_code) that `trust`
    does not allow raises UntrustedModelError before anything is imported or loaded.
    """
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{model_dir} is not an emoreason model directory: {MODEL_FILE} is missing")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r}, this emoreason reads {FORMAT_VERSION}")
    config = apply_user_trust(config_from_dict(ModelConfig, meta["config"], str(path)), path, trust)
    config = _resolve_encoders(_resolve_llm(config, Path(model_dir)), Path(model_dir))
    return config, {k: int(v) for k, v in meta["feature_dims"].items()}


def _resolve_llm(config: ModelConfig, model_dir: Path) -> ModelConfig:
    # An exported model carries its merged LLM as llm: "llm", relative to its own folder, so the
    # folder can move; other relative paths keep meaning "relative to the working directory".
    local = model_dir / config.llm
    if Path(config.llm).is_absolute() or not local.exists():
        return config
    return dataclasses.replace(config, llm=str(local))


def _resolve_encoders(config: ModelConfig, model_dir: Path) -> ModelConfig:
    # An exported model carries each tuned encoder, merged, as encoders.<m>.model: "encoders/<m>", relative
    # to its own folder like its llm.
    encoders = dict(config.encoders)
    for m, enc in encoders.items():
        local = model_dir / enc.model
        if enc.model.startswith(f"{EXPORTED_ENCODERS_DIR}/") and local.is_dir():
            encoders[m] = dataclasses.replace(enc, model=str(local))
    return dataclasses.replace(config, encoders=encoders)


EXPORTED_ENCODERS_DIR = "encoders"
"""Where an export puts each tuned encoder merged with its LoRA: <export>/encoders/<modality>/."""


def trained_encoder_modalities(config: ModelConfig, model_dir: str | os.PathLike) -> list[str]:
    """Modalities whose encoder weights the model trained: LoRA-tuned (`train.mode: lora`) or, in an export, merged
    into <export>/encoders/<modality>/. Their features change with training, so no prep cache holds them: they are
    always computed from the media (`emoreason infer --feature-source cache` too)."""
    exported = (Path(model_dir) / EXPORTED_ENCODERS_DIR).resolve()
    return [m for m, enc in config.encoders.items()
            if enc.train.mode == "lora" or Path(enc.model).resolve().parent == exported]


def load_model(
    model_dir: str | os.PathLike, trainable: bool = False, trust: UserTrust | None = None
) -> tuple[EmotionLM, EmotionProcessor]:
    """Reload a saved model; with trainable=True its LoRA and projectors can be trained further.

    trust: what the user allows beyond the directory's data (see read_model_config); default nothing.
    """
    from peft import PeftModel

    model_dir = Path(model_dir)
    config, dims = read_model_config(model_dir, trust)
    with remote_code_refusals(model_dir):
        llm = _load_llm(config)
    if config.lora is not None:
        with quiet_hf_progress():
            llm = PeftModel.from_pretrained(llm, str(model_dir / ADAPTER_DIR), is_trainable=trainable)
    model = EmotionLM(config, llm, dims).to(torch_dtype(config.dtype))
    attach_tuned_encoders(model)
    load_own_state(model, model_dir / PROJECTORS_FILE)
    load_encoder_adapters(model, model_dir)
    model.requires_grad_(False)
    if trainable:
        for name, param in model.named_parameters():
            param.requires_grad = is_tuned_weight(name)
    model.eval()  # the Trainer switches to train mode itself; inference must not run dropout or slow-path attention
    tokenizer_dir = model_dir / TOKENIZER_DIR
    with remote_code_refusals(model_dir):
        tokenizer = load_tokenizer(tokenizer_dir if tokenizer_dir.exists() else config.llm, config.trust_remote_code)
    return model, make_processor(model, tokenizer)
