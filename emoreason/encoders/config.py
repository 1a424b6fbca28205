"""Which frozen encoder to run and how to turn its hidden states into feature tokens."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from emoreason.config import check
from emoreason.dtypes import DTYPES

POOLING_MODES: tuple[str, ...] = ("mean", "cls", "none", "patches", "tokens:K")
OUTPUTS: tuple[str, ...] = ("hidden", "image_features")

# Fields that leave the features unchanged: where and in what batches the encoder runs; and `train`, since a
# tuned encoder's features are never cached (they change every step) and a frozen one's are the checkpoint's.
_RUNTIME_FIELDS: frozenset[str] = frozenset({"device", "batch_size", "train"})


def parse_pooling(pooling: str) -> tuple[str, int | None]:
    """Split a pooling spec into (mode, K): "tokens:8" -> ("tokens", 8), "mean" -> ("mean", None).

    Raises ValueError for anything that is not one of POOLING_MODES with K >= 1.
    """
    if pooling in ("mean", "cls", "none", "patches"):
        return pooling, None
    mode, _, count = pooling.partition(":")
    if mode == "tokens" and count.isdigit() and int(count) >= 1:
        return "tokens", int(count)
    raise ValueError(f"pooling {pooling!r}: expected one of {list(POOLING_MODES)} with K >= 1")


def _is_device(device: str) -> bool:
    # Parse with torch's own rules, imported lazily so reading a config does not load torch.
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        return False
    return True


@dataclass
class EncoderTraining:
    """Whether an encoder trains, named as a native backbone's `components.<name>` (emoreason.native.config).

    frozen: its features are fixed, so prep caches them. lora: peft adapters on its linear layers train in the
    model's graph (ExpLLM tunes its vision encoder so); its features are computed live from the decoded media
    in every step, never read from the cache, and its adapters are saved with the model (`full`, a whole
    encoder copy per model, is not offered).
    """

    mode: str = "frozen"
    """frozen or lora."""
    r: int = 8
    """Rank of the encoder's LoRA update."""
    alpha: int = 16
    """Scaling numerator: updates are scaled by alpha / r."""
    dropout: float = 0.0
    lora_targets: list[str] | None = None
    """For mode lora: names (last part, e.g. query, value, qkv, fc1) of the encoder's linear layers that get
    adapters; null takes every linear layer. A name that matches none is an error naming this key."""

    def __post_init__(self) -> None:
        from emoreason.lora_targets import MODES

        check(self.mode in MODES and self.mode != "full", "mode",
              f"frozen or lora (of {list(MODES)}, full is not offered for encoders)", self.mode)
        check(self.lora_targets is None or self.mode == "lora", "lora_targets", "unset unless mode is lora")
        check(self.lora_targets is None or bool(self.lora_targets), "lora_targets", "null or at least one module name")
        check(isinstance(self.r, int) and self.r >= 1, "r", "an integer >= 1", self.r)
        check(isinstance(self.alpha, int) and self.alpha >= 1, "alpha", "an integer >= 1", self.alpha)
        check(0 <= self.dropout < 1, "dropout", "a number in [0, 1)", self.dropout)

    @property
    def trainable(self) -> bool:
        return self.mode != "frozen"


@dataclass
class EncoderConfig:
    """One frozen per-modality encoder: the checkpoint, the layer read out and the pooling."""

    model: str
    """Hub id or local directory of the checkpoint (loaded with transformers AutoModel); for the landmarks
    modality the built-in "landmarks:annotation" or "landmarks:detector" (emoreason/encoders/landmarks.py)."""
    layer: int = -1
    """Index into `hidden_states` (0 = embeddings output, -1 = last layer)."""
    pooling: str = "mean"
    """One of "mean" (1 token), "cls" (first token), "none" (all tokens), "patches" (all tokens after the CLS),
    "tokens:K" (average-pooled to K)."""
    output: str = "hidden"
    """"hidden": `hidden_states[layer]`, pooled; "image_features": the image embedding of a CLIP or SigLIP
    checkpoint (`get_image_features`: CLIP's pooled CLS through its visual projection), one token an image."""
    dtype: str = "float32"
    """Weights dtype: "float32", "bfloat16" or "float16"; features come back as float32."""
    device: str = "cpu"
    """Torch device the encoder runs on ("cpu", "cuda", "cuda:1", ...)."""
    trust_remote_code: bool = False
    """Run modeling code shipped with the checkpoint; leave off unless the checkpoint needs it. In a saved
    model directory it is honoured only with the user's --trust-remote-code."""
    batch_size: int = 16
    """Images, clips or 30 s audio chunks per forward pass."""
    train: EncoderTraining = dataclasses.field(default_factory=EncoderTraining)
    """frozen (the default: features cached by prep) or lora (tuned in the model's graph; README, "Trainable encoders")."""

    def __post_init__(self) -> None:
        check(isinstance(self.model, str) and self.model.strip() != "", "model", "a hub id or local path", self.model)
        check(isinstance(self.layer, int) and not isinstance(self.layer, bool), "layer", "an integer", self.layer)
        check(isinstance(self.pooling, str) and _is_pooling(self.pooling), "pooling",
              f"one of {list(POOLING_MODES)} with K >= 1", self.pooling)
        check(self.output in OUTPUTS, "output", f"one of {list(OUTPUTS)}", self.output)
        if self.model.startswith("landmarks:"):
            from emoreason.encoders.landmarks import LANDMARK_ENCODERS

            check(self.model in LANDMARK_ENCODERS, "model", f"one of {sorted(LANDMARK_ENCODERS)}", self.model)
            check(self.output == "hidden" and self.layer == -1, "output",
                  "the defaults (output 'hidden', layer -1) for a landmark encoder, which has no layers", self.output)
            check(self.pooling in ("mean", "none") or self.pooling.startswith("tokens:"), "pooling",
                  "none (a token per frame), mean or tokens:K for landmarks (they have no CLS token)", self.pooling)
        check(not self.train.trainable or not self.model.startswith("landmarks:"), "train.mode",
              "frozen for a landmark encoder (it has no weights)", self.train.mode)
        if self.output == "image_features":
            check(self.layer == -1, "layer", "-1 with output 'image_features' (the embedding reads the last layer)",
                  self.layer)
            check(self.pooling in ("mean", "cls", "none"), "pooling",
                  "mean, cls or none with output 'image_features' (one token an image)", self.pooling)
        check(self.dtype in DTYPES, "dtype", f"one of {list(DTYPES)}", self.dtype)
        check(isinstance(self.device, str) and _is_device(self.device), "device", "a torch device like cpu or cuda:0",
              self.device)
        check(isinstance(self.trust_remote_code, bool), "trust_remote_code", "true or false", self.trust_remote_code)
        check(isinstance(self.batch_size, int) and not isinstance(self.batch_size, bool) and self.batch_size >= 1,
              "batch_size", "an integer >= 1", self.batch_size)

    def settings_fingerprint(self) -> dict[str, Any]:
        """Every setting that changes the features, for a cache key.

        The checkpoint's contents are not settings: pair this with `model_fingerprint(model)`.
        """
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in _RUNTIME_FIELDS}
        if settings["output"] == "hidden":
            del settings["output"]  # the default: caches keyed before the field existed stay valid
        return settings


# The encoder inputs a tuned encoder takes: decoded frames or face crops (emoreason.constants.MODALITY_TABLE);
# their token count follows from the image size, which the processor needs before the forward pass.
TUNABLE_INPUTS: tuple[str, ...] = ("frames", "face_crops")


def tunable_problem(modality: str, cfg: EncoderConfig) -> str | None:
    """Why `cfg` cannot be tuned on `modality` (None when it can): lora is for encoders of images."""
    from emoreason.constants import MODALITY_SPECS

    source = MODALITY_SPECS[modality].encoder_input
    if not cfg.train.trainable or source in TUNABLE_INPUTS:
        return None
    tunable = sorted(m for m, spec in MODALITY_SPECS.items() if spec.encoder_input in TUNABLE_INPUTS)
    return f"frozen: lora is offered for image encoders (the modalities {tunable}); {modality} encodes {source}"


def _is_pooling(pooling: str) -> bool:
    try:
        parse_pooling(pooling)
    except ValueError:
        return False
    return True
