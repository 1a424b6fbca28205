"""TRL's GRPOTrainer for the native kind: rollouts and log-probs carry each prompt's processed media.

`NativeGRPOTrainer(NativeTrainer, GRPOTrainer)` keeps GRPO's whole loop and the native trainer's save
format (adapters of a native model directory), atomic checkpoints and resume. Where the native model
breaks TRL's assumptions (docs/grpo.md, "Model kinds"):

- the policy is a NativeModel around a (peft-wrapped) transformers backbone: TRL reads
  `generation_config` and `add_model_tags` off it (the backbone's are exposed), and patches its
  `forward` with the fused log-prob head, which is moved onto the backbone itself;
- prompts are sample ids: each row is encoded by the backbone's chat template with its media
  processed (emoreason.native.samples.encode_sample), and the rows' media items ride in TRL's
  batch as a per-row list (`native_media`), so TRL's shuffle and split keep them with their rows;
  pixel tensors of different rows have different lengths, so they are concatenated per forward call;
- `_generate_single_turn` samples through the backbone's `generate` with the processed media, or
  (rollout_backend vllm) through vLLM's own model file and media processing with the GRPO LoRA synced
  (emoreason.train.vllm_rollouts); the media pad tokens are never sampled (a sampled one would not
  match the media features, as TRL does for an image token);
- `_get_per_token_logps_and_entropies` runs the backbone with the rows' pixel / audio inputs;
- the KL reference is the policy with its LoRA disabled (peft `disable_adapter()`), not a second model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from trl import GRPOTrainer

from emoreason.native.conversation import NativeEncoded, collate, mm_token_type_ids
from emoreason.native.model import NativeModel
from emoreason.native.processor import ModalityInputs
from emoreason.native.training import base_model
from emoreason.train.grpo_trainer import MediaRowsGRPO
from emoreason.train.native_trainer import NativeTrainer
from emoreason.train.vllm_rollouts import VLLMRollouts, completions_up_to_eos

MEDIA_KEY = "native_media"


def media_tensors(processor, rows: Sequence[list[ModalityInputs]]) -> dict[str, torch.Tensor]:
    """The backbone's media inputs of these rows: each tensor concatenated along dim 0 in row order (as collate does)."""
    parts: dict[str, list[torch.Tensor]] = {}
    for items in rows:
        for item in items:
            for name, tensor in item.tensors.items():
                parts.setdefault(name, []).append(tensor)
    return {name: torch.cat(tensors) for name, tensors in parts.items()}


def vllm_prompt(store, sample_id: str, modalities: list[str]) -> dict:
    """A sample's generation prompt as vLLM's native path takes it (emoreason.serving.native_vllm): the backbone's
    placeholders unexpanded and the sample's media decoded, for the modalities its hf encoding carries."""
    from emoreason.features.sources import sample_files
    from emoreason.media.errors import MediaError
    from emoreason.serving.native_vllm import vllm_media

    files = sample_files(store.samples[sample_id], store.roots[sample_id])
    for path in files.values():
        if isinstance(path, MediaError):
            raise path
    featurizer = store.featurizer
    data, _ = vllm_media(files, modalities, featurizer.frames, featurizer.audio.max_seconds)
    return {"prompt": store.conversation.prompt_text(store.turns(sample_id), list(data)), "multi_modal_data": data}


class NativeGRPOTrainer(MediaRowsGRPO, NativeTrainer, GRPOTrainer):
    def __init__(self, *, model: NativeModel, store, reward_funcs, args, train_dataset, emotion_processor,
                 rollouts: VLLMRollouts | None = None):
        """rollouts: the vLLM engine that samples the completions (grpo.rollout_backend vllm); None: the backbone's generate."""
        self.store = store
        self.rollouts = rollouts
        self._row_ids: list[str] = []
        self._media: list[list[ModalityInputs]] | None = None
        self._encoded: list[NativeEncoded] | None = None
        hf_model = base_model(model.backbone)
        model.generation_config = hf_model.generation_config
        model.add_model_tags = lambda tags: None
        # A sampled media pad token would not match the rows' media features.
        self._suppressed = sorted(set(emotion_processor.pad_token_ids.values()))
        args.generation_kwargs = (args.generation_kwargs or {}) | {"suppress_tokens": self._suppressed}
        # The fused head belongs on the transformers model under peft, not on the NativeModel TRL patched.
        self._init_grpo(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                        processing_class=emotion_processor.tokenizer, emotion_processor=emotion_processor,
                        fused_head_model=hf_model)

    def create_model_card(self, *args, **kwargs) -> None:
        """No hub model card: a native model directory documents itself (emoreason_native.json)."""

    def _peft_model(self):
        return self._policy().backbone

    def _generate_and_score_completions(self, inputs):
        self._row_ids = [x["sample_id"] for x in inputs]
        self._encoded = [self.store.encode(i) for i in self._row_ids]
        media = [e.media for e in self._encoded]
        with self._with_media(media):
            output = super()._generate_and_score_completions(inputs)
        output[MEDIA_KEY] = media
        return output

    def _tokenize_prompts(self, prompts):
        return [e.input_ids for e in self._encoded], None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if self.rollouts is not None:
            return self._vllm_rollouts(), None
        device = self.accelerator.device
        batch = collate(self.emotion_processor, self._encoded, padding_side="left")
        batch.pop("labels")
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            out = self._policy().generate(**batch, generation_config=self.generation_config)
        return completions_up_to_eos(out[:, batch["input_ids"].shape[1]:].tolist(), self.eos_token_ids), None

    def _vllm_rollouts(self) -> list[list[int]]:
        """Each row's prompt (the backbone's placeholders unexpanded) and decoded media, sampled by vLLM under the synced
        LoRA; vLLM's own processing must give the prompt ids the log-probs will score, or the rollouts are off-policy."""
        self.rollouts.sync(self._policy().backbone, self.state.global_step)
        prompts = [vllm_prompt(self.store, i, [m.modality for m in e.media]) for i, e in zip(self._row_ids, self._encoded)]
        params = self.rollouts.sampling_params(self, suppressed=self._suppressed)
        completions, seen = self.rollouts.complete(prompts, params, self.eos_token_ids)
        for sample_id, encoded, ids in zip(self._row_ids, self._encoded, seen):
            if ids != encoded.input_ids:
                raise RuntimeError(f"sample {sample_id}: vLLM's processing gave a prompt of {len(ids)} tokens where the "
                                   f"backbone's processor gave {len(encoded.input_ids)}; its rollouts would not be of this prompt")
        return completions

    def _compute_loss(self, model, inputs):
        with self._with_media(inputs[MEDIA_KEY]):
            return super()._compute_loss(model, inputs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        if self._media is None or len(self._media) != input_ids.shape[0]:
            raise RuntimeError("log-probs asked for rows whose media are unknown")
        processor = self.emotion_processor

        def row_inputs(start: int, end: int, ids: torch.Tensor) -> dict:
            extra = {k: v.to(ids.device) for k, v in media_tensors(processor, self._media[start:end]).items()}
            if processor.arch.model_type == "qwen2_5_vl":
                extra["mm_token_type_ids"] = mm_token_type_ids(processor, ids)
            return extra

        return self._completion_logps(model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, row_inputs)
