"""The emotion LM without its transformer layers: projectors + the LLM's input embedding table.

An external LLM engine (vLLM) runs the transformer itself and takes prompt embeddings; building
them needs only the token embeddings and the projectors, not a second copy of the LLM's weights
(for a 7B LLM that copy would cost ~14 GiB). `load_prompt_embedder` gives an `EmotionLM` whose
`embed()` is the very code the HF path runs, so both backends feed their LLMs the same vectors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from emoreason.dtypes import torch_dtype
from emoreason.model.loading import (
    ADAPTER_DIR,
    PROJECTORS_FILE,
    TOKENIZER_DIR,
    load_own_state,
    load_tokenizer,
    make_processor,
    read_model_config,
)
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.model.trust import UserTrust, remote_code_refusals


class NotExportedError(ValueError):
    """A model directory whose LoRA is not merged into its LLM yet."""


class InputEmbeddingsOnly(nn.Module):
    """Stands in for the LLM inside EmotionLM: its config and its input embeddings, nothing else."""

    def __init__(self, config, embed_tokens: nn.Embedding):
        super().__init__()
        self.config = config
        self.embed_tokens = embed_tokens

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def forward(self, *args, **kwargs):
        raise RuntimeError("InputEmbeddingsOnly holds no transformer layers; run the LLM in its own engine")


def _embedding_key(llm_config, trust_remote_code: bool) -> str:
    """The state-dict name of the input embedding weight, from a weightless (meta) copy of the model."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(llm_config, trust_remote_code=trust_remote_code)
    weight = skeleton.get_input_embeddings().weight
    return next(name for name, param in skeleton.named_parameters() if param is weight)


def _read_tensor(llm_dir: Path, key: str) -> torch.Tensor | None:
    index = llm_dir / "model.safetensors.index.json"
    if index.exists():
        shard = json.loads(index.read_text())["weight_map"].get(key)
        files = [llm_dir / shard] if shard else []
    else:
        files = [llm_dir / "model.safetensors"] if (llm_dir / "model.safetensors").exists() else []
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            if key in f.keys():
                return f.get_tensor(key)
    return None


def load_input_embeddings(llm_dir: str | os.PathLike, dtype: torch.dtype, trust_remote_code: bool = False) -> InputEmbeddingsOnly:
    """The embedding table of a local HF checkpoint, read from its safetensors without the other weights."""
    from transformers import AutoConfig

    llm_dir = Path(llm_dir)
    config = AutoConfig.from_pretrained(str(llm_dir), trust_remote_code=trust_remote_code)
    key = _embedding_key(config, trust_remote_code)
    weight = _read_tensor(llm_dir, key)
    if weight is None:
        raise FileNotFoundError(f"{llm_dir}: no safetensors tensor {key!r} (the input embeddings) in this checkpoint")
    return InputEmbeddingsOnly(config, nn.Embedding.from_pretrained(weight.to(dtype), freeze=True))


def load_prompt_embedder(
    model_dir: str | os.PathLike, trust: UserTrust | None = None
) -> tuple[EmotionLM, EmotionProcessor, Path]:
    """(embedder, processor, LLM checkpoint dir) for an exported model directory.

    trust: what the user allows beyond the directory's data (emoreason.model.loading.read_model_config).

    NotExportedError for a directory whose LoRA still sits beside the base LLM: an external engine
    needs the merged checkpoint that `emoreason export` writes.
    """
    model_dir = Path(model_dir)
    config, dims = read_model_config(model_dir, trust)
    tuned = sorted(m for m, e in config.encoders.items() if e.train.trainable)
    if config.lora is not None or (model_dir / ADAPTER_DIR).exists() or tuned:
        what = f"the LoRA of the {tuned} encoder(s) is not merged yet" if tuned and config.lora is None else \
            "the LoRA is not merged into the LLM"
        raise NotExportedError(
            f"{model_dir}: {what}; run `emoreason export {model_dir} --out EXPORT_DIR` "
            "and serve EXPORT_DIR"
        )
    llm_dir = Path(config.llm)
    if not llm_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: llm {config.llm!r} is not a local checkpoint directory")
    dtype = torch_dtype(config.dtype)
    with remote_code_refusals(model_dir):
        embeddings = load_input_embeddings(llm_dir, dtype, config.trust_remote_code)
    model = EmotionLM(config, embeddings, dims).to(dtype)
    load_own_state(model, model_dir / PROJECTORS_FILE)
    model.requires_grad_(False).eval()
    tokenizer_dir = model_dir / TOKENIZER_DIR
    with remote_code_refusals(model_dir):
        tokenizer = load_tokenizer(tokenizer_dir if tokenizer_dir.exists() else llm_dir, config.trust_remote_code)
    return model, make_processor(model, tokenizer), llm_dir
