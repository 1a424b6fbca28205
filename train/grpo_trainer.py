"""TRL's GRPOTrainer for EmotionLM: rollouts and log-probs carry the media features of each prompt.

`EmotionGRPOTrainer(EmotionTrainer, GRPOTrainer)` keeps GRPO's whole loop (sampling groups, rewards,
advantages, clipped loss, KL, logging) and EmotionTrainer's save format, atomic checkpoints and
resume. It overrides TRL where EmotionLM breaks its assumptions (docs/grpo.md lists them):

- the policy is no `PreTrainedModel`: TRL reads `config`, `generation_config` and `add_model_tags` off
  it, and patches its `forward` with the fused log-prob head. The LLM's own are exposed on the
  EmotionLM for TRL's constructor, and the fused head is moved onto the LLM inside, where the
  EmotionLM's forward (media spliced into inputs_embeds) reaches it through `fused_lm_head=True`;
- prompts are sample ids: `_tokenize_prompts` encodes each sample's conversation with its
  media placeholders expanded, and the batch's `media_ids` and features ride beside TRL's tensors
  (`_generate_and_score_completions` adds them to its output, so TRL's shuffle and split keep them
  aligned with their rows);
- `_generate_single_turn` samples through EmotionLM.generate (transformers generate on inputs_embeds),
  or (rollout_backend vllm) sends the same prompt embeddings to vLLM with the GRPO LoRA synced
  (emoreason.train.vllm_rollouts);
- `_get_per_token_logps_and_entropies` runs EmotionLM.forward with the rows' media;
- the KL reference is the policy with its LoRA disabled (peft `disable_adapter()`), not a second
  model: TRL would otherwise load a copy of the LLM by its hub id.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import torch
from trl import GRPOTrainer
from trl.trainer.utils import add_fused_lm_head

from emoreason.model.features import collate_features
from emoreason.model.generation import left_pad
from emoreason.model.modeling import EmotionLM
from emoreason.train.grpo_data import PromptStore
from emoreason.train.trainer import EmotionTrainer
from emoreason.train.vllm_rollouts import VLLMRollouts, completions_up_to_eos

FEATURES_PREFIX = "features."
MASK_SUFFIX = ".mask"


class AdapterDisabledReference:
    """Stands in TRL's `ref_model` slot: log-probs of the policy itself with its LoRA disabled."""

    def __repr__(self) -> str:
        return "AdapterDisabledReference()"


class MediaRowsGRPO:
    """What both kinds' GRPO trainers (this one and native_grpo_trainer's) do alike, mixed in before their
    Trainer and GRPOTrainer: the adapter-disabled reference, the fused log-prob head on the transformers
    model, the rows' media set around TRL's calls, and completion log-probs scored in chunks.

    A kind supplies `_peft_model()` (the LoRA-wrapped LLM of its policy) and, per chunk of rows, the
    media inputs of its forward call.
    """

    _media = None

    def _init_grpo(self, *, model, args, fused_head_model, **kwargs) -> None:
        """GRPOTrainer's constructor without a second model as the KL reference (TRL would load one by its
        hub id when beta > 0), then TRL's patched `model.forward` replaced by the fused head on `fused_head_model`."""
        beta, args.beta = args.beta, 0.0
        try:
            super().__init__(model=model, args=args, **kwargs)
        finally:
            args.beta = beta
        self.beta = beta
        self.ref_model = AdapterDisabledReference() if beta else None
        del model.forward
        add_fused_lm_head(fused_head_model, temperature=self.temperature, outputs=("log_probs", "entropy"))

    def _peft_model(self):
        raise NotImplementedError

    @contextlib.contextmanager
    def _with_media(self, media):
        previous, self._media = self._media, media
        try:
            yield
        finally:
            self._media = previous

    def _policy(self):
        return self.accelerator.unwrap_model(self.model)

    def _completion_logps(self, model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                          row_inputs: Callable[[int, int, torch.Tensor], dict]):
        """TRL's (log-probs, entropies, aux) of the completion tokens, `batch_size` rows a forward call; the
        reference is the policy with its LoRA disabled. row_inputs(start, end, ids): the media inputs of those rows."""
        reference = model is self.ref_model
        # The wrapped model (DDP) for the policy's own forward, so its gradients are reduced across ranks.
        policy_call = self.model_wrapped if reference else model
        batch_size = batch_size or input_ids.shape[0]
        disabled = self._peft_model().disable_adapter() if reference else contextlib.nullcontext()
        logps, entropies = [], []
        with disabled:
            for start in range(0, input_ids.shape[0], batch_size):
                end = min(start + batch_size, input_ids.shape[0])
                ids, mask = input_ids[start:end], attention_mask[start:end]
                labels = ids.masked_fill(mask == 0, -100)
                labels[:, :-logits_to_keep] = -100  # only completion tokens are scored
                media = row_inputs(start, end, ids)
                with self.accelerator.autocast():
                    out = policy_call(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, **media)
                logps.append(out.log_probs[:, -logits_to_keep:])
                if compute_entropy:
                    entropies.append(out.entropy[:, -logits_to_keep:])
        return torch.cat(logps), (torch.cat(entropies) if compute_entropy else None), None


@dataclasses.dataclass
class RowMedia:
    """The media of a batch's prompt rows: media_ids [b, p] left-padded like TRL's prompt_ids, features per modality."""

    media_ids: torch.Tensor
    features: dict[str, tuple[torch.Tensor, torch.Tensor]]  # modality -> ([b, t, d], mask [b, t])

    def rows(self, start: int, end: int) -> RowMedia:
        kept = {m: (x[start:end], mask[start:end]) for m, (x, mask) in self.features.items() if mask[start:end].any()}
        return RowMedia(self.media_ids[start:end], kept)

    def flat(self) -> dict[str, torch.Tensor]:
        out = {"media_ids": self.media_ids}
        for m, (x, mask) in self.features.items():
            out[FEATURES_PREFIX + m], out[FEATURES_PREFIX + m + MASK_SUFFIX] = x, mask
        return out

    @classmethod
    def from_flat(cls, inputs: dict) -> RowMedia:
        features = {
            key[len(FEATURES_PREFIX):]: (value, inputs[key + MASK_SUFFIX])
            for key, value in inputs.items() if key.startswith(FEATURES_PREFIX) and not key.endswith(MASK_SUFFIX)
        }
        return cls(inputs["media_ids"], features)


def _expose_llm_surface(model: EmotionLM) -> None:
    # What GRPOTrainer.__init__ reads off a PreTrainedModel, taken from the LLM the EmotionLM wraps.
    model.config = model.llm.config
    model.generation_config = model.llm.generation_config
    model.add_model_tags = lambda tags: None


class EmotionGRPOTrainer(MediaRowsGRPO, EmotionTrainer, GRPOTrainer):
    def __init__(self, *, model: EmotionLM, store: PromptStore, reward_funcs, args, train_dataset, emotion_processor,
                 rollouts: VLLMRollouts | None = None):
        """rollouts: the vLLM engine that samples the completions (grpo.rollout_backend vllm); None: EmotionLM.generate."""
        if model.model_config.lora is None:
            raise ValueError("stage grpo trains a LoRA: the policy model has none")
        self.store = store
        self.rollouts = rollouts
        self._media: RowMedia | None = None
        self._encoded = None
        _expose_llm_surface(model)
        # The fused head belongs to the LLM, after the media splice (EmotionLM.forward reaches it by fused_lm_head=True).
        self._init_grpo(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                        processing_class=emotion_processor.tokenizer, emotion_processor=emotion_processor,
                        fused_head_model=model.llm.get_base_model())

    def create_model_card(self, *args, **kwargs) -> None:
        """No hub model card: an emoreason model directory documents itself (emoreason_model.json)."""

    def _peft_model(self):
        return self._policy().llm

    # ------------------------------------------------------------------ rollouts

    def _generate_and_score_completions(self, inputs):
        ids = [x["sample_id"] for x in inputs]
        features = [self.store.features(i) for i in ids]
        processor = self.emotion_processor
        self._encoded = [
            processor.encode(self.store.turns(i), {m: f.shape[0] for m, f in feats.items()}, generation_prompt=True,
                             fields=self.store.prompt_fields(i))
            for i, feats in zip(ids, features)
        ]
        device = self.accelerator.device
        padded = left_pad(processor.pad_id, self._encoded)
        collated = {m: (x.to(device), mask.to(device)) for m, (x, mask) in collate_features(features).items()}
        media = RowMedia(padded["media_ids"].to(device), collated)
        with self._with_media(media):
            output = super()._generate_and_score_completions(inputs)
        if output["prompt_ids"].shape[1] != media.media_ids.shape[1]:
            raise RuntimeError(f"prompt width {output['prompt_ids'].shape[1]} != media width {media.media_ids.shape[1]}")
        return output | media.flat()

    def _tokenize_prompts(self, prompts):
        return [e.input_ids for e in self._encoded], None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        device = self.accelerator.device
        padded = left_pad(self.emotion_processor.pad_id, self._encoded)
        input_ids, attention_mask = padded["input_ids"].to(device), padded["attention_mask"].to(device)
        policy = self._policy()
        if self.rollouts is not None:
            return self._vllm_rollouts(policy, input_ids, attention_mask), None
        with torch.no_grad():
            new_tokens = policy.generate(input_ids, attention_mask, self._media.media_ids, self._media.features,
                                         generation_config=self.generation_config)
        return completions_up_to_eos(new_tokens.tolist(), self.eos_token_ids), None

    def _vllm_rollouts(self, policy: EmotionLM, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
        """The rows' prompt embeddings (the same EmotionLM.embed the hf path runs) sampled by vLLM under the synced LoRA."""
        self.rollouts.sync(policy.llm, self.state.global_step)
        with torch.no_grad():
            embeds = policy.embed(input_ids, self._media.media_ids, self._media.features)  # [b, s, D], left-padded
        prompts = [{"prompt_embeds": row[mask.bool()].cpu()} for row, mask in zip(embeds, attention_mask)]
        completions, _ = self.rollouts.complete(prompts, self.rollouts.sampling_params(self), self.eos_token_ids)
        return completions

    # ------------------------------------------------------------------ log-probs

    def _compute_loss(self, model, inputs):
        with self._with_media(RowMedia.from_flat(inputs)):
            return super()._compute_loss(model, inputs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        if self._media is None:
            raise RuntimeError("log-probs asked for rows whose media are unknown")
        prompt_width = input_ids.shape[1] - logits_to_keep
        media = self._media
        if media.media_ids.shape != (input_ids.shape[0], prompt_width):
            raise RuntimeError(f"media_ids {tuple(media.media_ids.shape)} do not cover prompts of {tuple(input_ids.shape)}")
        completion_media = torch.zeros(input_ids.shape[0], logits_to_keep, dtype=media.media_ids.dtype, device=input_ids.device)
        media_ids = torch.cat([media.media_ids.to(input_ids.device), completion_media], dim=1)  # [b, p + c]

        def row_inputs(start: int, end: int, ids: torch.Tensor) -> dict:
            return {"media_ids": media_ids[start:end], "features": media.rows(start, end).features}

        return self._completion_logps(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, row_inputs)

