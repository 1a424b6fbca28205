"""ModelConfig: which LLM, which encoder per modality, which projector, LoRA and media settings.

Values are checked in `__post_init__`; checks that need the checkpoints (does a LoRA target exist
in this LLM? does a local encoder path exist?) run in `check_against_checkpoints`, still before
any weights load.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from emoreason.config import ConfigError, check
from emoreason.dtypes import DTYPES
from emoreason.constants import MODALITIES
from emoreason.encoders.config import EncoderConfig, tunable_problem
from emoreason.features.media_config import MediaConfig
from emoreason.model.landmark_attention import LandmarkAttentionConfig
from emoreason.model.prefusion import PrefusionConfig
from emoreason.model.projectors import ProjectorConfig
from emoreason.model.prompt_template import FUSION_SLOT, PromptTemplate



@dataclasses.dataclass
class LoraSettings:
    r: int = 8
    """Rank of the LoRA update."""
    alpha: int = 16
    """Scaling numerator: updates are scaled by alpha / r."""
    dropout: float = 0.05
    target_modules: list[str] = dataclasses.field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Module name suffixes in the LLM that get LoRA adapters."""

    def __post_init__(self) -> None:
        check(self.r >= 1, "r", "an integer >= 1", self.r)
        check(self.alpha >= 1, "alpha", "an integer >= 1", self.alpha)
        check(0 <= self.dropout < 1, "dropout", "a number in [0, 1)", self.dropout)
        check(bool(self.target_modules), "target_modules", "at least one module name")


@dataclasses.dataclass
class ModelConfig:
    llm: str
    """Hub id or local path of any AutoModelForCausalLM with a chat template."""
    encoders: dict[str, EncoderConfig]
    """Frozen encoder per modality; must match the prep config that built the feature cache."""
    projectors: dict[str, ProjectorConfig]
    """Projector per modality; every key needs an encoder."""
    lora: LoraSettings | None = dataclasses.field(default_factory=LoraSettings)
    """LoRA on the LLM; null trains no LLM weights (projector-only models)."""
    prefusion: PrefusionConfig = dataclasses.field(default_factory=PrefusionConfig)
    landmark_attention: LandmarkAttentionConfig = dataclasses.field(default_factory=LandmarkAttentionConfig)
    """Face-LLaVA's landmark region cross-attention on one visual modality's projected tokens; reads the
    landmarks modality's features (encoders.landmarks), with or without a landmarks projector."""
    media: MediaConfig = dataclasses.field(default_factory=MediaConfig)
    """Frame sampling, face crops and audio limits for live features (must equal prep's)."""
    system_prompt: str | None = None
    """System turn prepended to every conversation."""
    prompt: PromptTemplate | None = None
    """The recipe's own prompt format (emoreason.model.prompt_template): its first user turn with a slot per
    modality; saved with the model, so training, serving, infer and chat use the same. Null: our placeholders
    (`<video>` ...) where the conversation writes them, the others before the first user turn."""
    max_length: int = 1024
    """Longest token sequence (text plus media tokens)."""
    dtype: str = "float32"
    """LLM and projector dtype: float32, bfloat16 or float16."""
    trust_remote_code: bool = False
    """Run modeling code shipped with the LLM checkpoint; off unless asked. Honoured from the user's own
    train config; a saved model directory that sets it loads only with the user's --trust-remote-code."""

    def __post_init__(self) -> None:
        check(bool(self.projectors), "projectors", f"at least one projector, keyed by modality among {list(MODALITIES)}")
        for modality in self.encoders:
            check(modality in MODALITIES, f"encoders.{modality}", f"a modality among {list(MODALITIES)}", modality)
            problem = tunable_problem(modality, self.encoders[modality])
            check(problem is None, f"encoders.{modality}.train.mode", problem or "", self.encoders[modality].train.mode)
        for modality in self.projectors:
            check(modality in MODALITIES, f"projectors.{modality}", f"a modality among {list(MODALITIES)}", modality)
            check(modality in self.encoders, f"projectors.{modality}", f"a matching encoder under encoders.{modality} (the <{modality}> placeholder has no encoder)")
        if self.prefusion.enabled:
            for modality in self.prefusion.modalities:
                check(modality in self.projectors, "prefusion.modalities", f"modalities that have projectors ({sorted(self.projectors)})", modality)
        if self.landmark_attention.enabled:
            check("landmarks" in self.encoders, "landmark_attention.enabled",
                  "an encoder under encoders.landmarks (landmarks:annotation or landmarks:detector) to attend to")
            check(self.landmark_attention.modality in self.projectors, "landmark_attention.modality",
                  f"a modality that has a projector ({sorted(self.projectors)})", self.landmark_attention.modality)
        if self.prompt is not None:
            fused = [FUSION_SLOT] if self.prefusion.enabled else []
            self.prompt.check_modalities([m for m in self.modalities if m in self.projectors] + fused)
        check(self.dtype in DTYPES, "dtype", f"one of {list(DTYPES)}", self.dtype)
        check(self.max_length >= 16, "max_length", "an integer >= 16", self.max_length)

    @property
    def modalities(self) -> list[str]:
        """The modalities whose features the model takes: those with a projector, and the landmarks its
        landmark attention reads."""
        attended = {"landmarks"} if self.landmark_attention.enabled else set()
        return [m for m in MODALITIES if m in self.projectors or m in attended]


def _looks_local(name: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else (./x, /x, a/b/c, ~/x) is a local path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def check_against_checkpoints(cfg: ModelConfig, prefix: str = "model.") -> None:
    """Config errors that need the checkpoints' configs (never their weights), named by key."""
    for modality, enc in cfg.encoders.items():
        if _looks_local(enc.model) and not Path(enc.model).expanduser().exists():
            raise ConfigError(f"key '{prefix}encoders.{modality}.model': encoder checkpoint not found at {enc.model}")
    if _looks_local(cfg.llm) and not Path(cfg.llm).expanduser().exists():
        raise ConfigError(f"key '{prefix}llm': LLM checkpoint not found at {cfg.llm}")
    for modality in cfg.modalities:
        if cfg.encoders[modality].train.trainable:
            from emoreason.encoders.tuned import check_lora_targets

            check_lora_targets(modality, cfg.encoders[modality], prefix)
    if cfg.lora is not None:
        names = llm_module_names(cfg.llm, cfg.trust_remote_code)
        for target in cfg.lora.target_modules:
            pattern = re.compile(rf"(^|\.){re.escape(target)}$")
            if not any(pattern.search(n) for n in names):
                suffixes = sorted({n.rsplit(".", 1)[-1] for n in names})
                raise ConfigError(
                    f"key '{prefix}lora.target_modules': {target!r} is not a module of {cfg.llm}; "
                    f"linear modules there include {suffixes[:20]}"
                )


def llm_module_names(llm: str, trust_remote_code: bool = False) -> list[str]:
    """Module names of the LLM, from a skeleton on the meta device (no weights read or allocated)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(llm, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return [name for name, module in skeleton.named_modules() if isinstance(module, torch.nn.Linear)]


def encoder_hidden_size(model: str, trust_remote_code: bool = False, output: str = "hidden") -> int:
    """Feature width d of an encoder's `output`, read from its config (no weights loaded)."""
    from transformers import AutoConfig

    from emoreason.encoders.families import feature_width
    from emoreason.encoders.landmarks import LANDMARK_WIDTH, is_landmark_encoder

    if is_landmark_encoder(model):
        return LANDMARK_WIDTH
    config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    return feature_width(config, output)
