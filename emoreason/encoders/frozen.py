"""A frozen transformers encoder that turns audio, images or video into pooled hidden-state tokens.

Notation: n samples / images / frames, b batch, t tokens, k tokens after pooling, d hidden size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, PreTrainedConfig

from emoreason.config import check
from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.encoders.clips import clip_indices
from emoreason.dtypes import torch_dtype
from emoreason.encoders.config import EncoderConfig, parse_pooling
from emoreason.encoders.families import (
    DUAL_TOWER_TYPES,
    FAMILIES,
    FAMILY_INPUT,
    IMAGE_FEATURE_TYPES,
    feature_width,
    prefix_tokens,
    tower_config,
)
from emoreason.encoders.fingerprint import model_fingerprint
from emoreason.encoders.pooling import pool_tokens
from emoreason.hf_quiet import quiet_hf_progress



class FrozenEncoder:
    """One checkpoint in eval mode with gradients off, plus the processor that prepares its inputs.

    Every encode_* method returns float32 features on the CPU as ordinary tensors (made outside
    inference mode), so a trainable projector can consume them directly.
    """

    def __init__(self, cfg: EncoderConfig):
        self.cfg = dataclasses.replace(cfg)  # a copy: later edits to the caller's config must not leak in
        config = AutoConfig.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
        self.model_type: str = config.model_type
        if self.model_type not in FAMILIES:
            raise ValueError(f"{cfg.model}: model type {self.model_type!r} is not a supported encoder; "
                             f"supported: {sorted(FAMILIES)}")
        self.family = FAMILIES[self.model_type]
        # A full CLIP or SigLIP model also holds a text tower; only its vision config describes what we run.
        self._check_settings(tower_config(config))
        check(cfg.output == "hidden" or self.model_type in IMAGE_FEATURE_TYPES, "output",
              f"'hidden' for {cfg.model}: 'image_features' needs a full checkpoint of type "
              f"{sorted(IMAGE_FEATURE_TYPES)}, this is {self.model_type!r}", cfg.output)
        self._prefix_tokens = prefix_tokens(self.model_type)
        if self.model_type == "vit_mae":
            config.mask_ratio = 0.0  # MAE pre-training hides 75% of patches; features need them all
        model = AutoModel.from_pretrained(cfg.model, config=config, trust_remote_code=cfg.trust_remote_code,
                                          dtype=torch_dtype(cfg.dtype))
        self._model = model.to(torch.device(cfg.device)).eval().requires_grad_(False)
        self._backbone = self._select_backbone()
        if self.family in ("waveform", "whisper"):
            self.processor = AutoFeatureExtractor.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
        else:
            # The PIL backend everywhere: torchvision resizes differently, and features must not depend on
            # whether the machine has torchvision.
            self.processor = AutoImageProcessor.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code,
                                                                backend="pil")

    @property
    def device(self) -> torch.device:
        """Where the weights are: cfg.device, or wherever a model owning a tuned encoder has moved it."""
        return next(self._model.parameters()).device

    @property
    def hidden_size(self) -> int:
        """d, the width of every feature token."""
        return feature_width(self._model.config, self.cfg.output)

    def encode_audio(self, wave: np.ndarray) -> torch.Tensor:
        """[n] float32 mono 16 kHz waveform -> [k, d] (k = frames for pooling "none")."""
        return self.encode_audios([wave])[0]

    def encode_audios(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        """`encode_audio` of several waveforms. HuBERT/wav2vec2 waveforms of one length share a forward pass
        (up to batch_size at a time); others run alone: stacking unequal ones would need padding, which moves
        the group-norm statistics of the conv stack, and Whisper pads every piece to 30 s already."""
        self._require(("waveform", "whisper"), "encode_audio")
        waves = [np.asarray(w, dtype=np.float32) for w in waves]
        for wave in waves:
            if wave.ndim != 1 or wave.size == 0:
                raise ValueError(f"encode_audio: expected a non-empty 1-D waveform, got shape {wave.shape}")
        feats: list[torch.Tensor | None] = [None] * len(waves)
        by_length: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            by_length.setdefault(-1 - i if self.family == "whisper" else wave.size, []).append(i)
        with torch.inference_mode():
            for rows in by_length.values():
                for start in range(0, len(rows), self.cfg.batch_size):
                    chunk = rows[start:start + self.cfg.batch_size]
                    if self.family == "whisper":
                        hidden = self._whisper_hidden(waves[chunk[0]])  # [1, t, d]
                    else:
                        hidden = self._waveform_hidden(np.stack([waves[i] for i in chunk]))  # [b, t, d]
                    for i, pooled in zip(chunk, self._pool(hidden)):  # [b, k, d]
                        feats[i] = pooled.clone()  # outside inference mode: trainable inputs
        return feats

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """[n, h, w, 3] uint8 RGB -> [n, k, d], pooled per image."""
        with torch.inference_mode():
            feats = self.image_tokens(self.pixel_values(images)).cpu()  # [n, k, d]
        return feats.clone()

    def pixel_values(self, images: np.ndarray) -> torch.Tensor:
        """[n, h, w, 3] uint8 RGB -> [n, 3, H, W] float32 on the CPU: the checkpoint's own image processing.

        The CPU half of encode_images; a tuned encoder's dataset runs it, the model's forward the other half.
        """
        self._require(("image",), "encode_images")
        images = _check_frames(images, "encode_images")
        return self.processor(list(images), return_tensors="pt", input_data_format="channels_last")["pixel_values"]

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """[n, 3, H, W] -> [n, k, d] float32 on the encoder's device, in batches of cfg.batch_size.

        No inference mode here: with LoRA adapters on the weights (emoreason.encoders.tuned) and grad
        enabled, the graph reaches them.
        """
        pooled = []
        for start in range(0, len(pixels), self.cfg.batch_size):
            batch = pixels[start:start + self.cfg.batch_size]
            if self.cfg.output == "image_features":
                pooled.append(self._image_features(batch, to_cpu=False))  # [b, 3, H, W] -> [b, 1, d]
            else:
                pooled.append(self._pool(self._image_hidden(batch), to_cpu=False))  # [b, 3, H, W] -> [b, k, d]
        return torch.cat(pooled)  # [n, k, d]

    def tokens_per_image(self, height: int, width: int) -> int:
        """k, the tokens image_tokens gives per image of pixel_values size height x width (no forward pass)."""
        if self.cfg.output == "image_features":
            return 1
        mode, count = parse_pooling(self.cfg.pooling)
        if mode in ("mean", "cls"):
            return 1
        if mode == "tokens":
            return int(count)
        patch = tower_config(self._model.config).patch_size
        patches = (height // patch) * (width // patch)  # the patch embedding is a stride-`patch` convolution
        return patches + (self._prefix_tokens if mode == "none" else 0)

    def encode_image_outputs(self, images: np.ndarray, poolings: dict[str, str]) -> dict[str, torch.Tensor]:
        """[n, h, w, 3] uint8 RGB -> name -> [n, k, d], every pooling from one forward pass.

        One encoder feeding two inputs, as Emotion-LLaMA feeds EVA-CLIP's CLS token and its patch tokens
        to two projectors: poolings={"cls": "cls", "patches": "patches"}. `layer` and `output` are this
        encoder's; `cfg.pooling` is not used.
        """
        self._require(("image",), "encode_image_outputs")
        check(self.cfg.output == "hidden", "output", "'hidden' for encode_image_outputs", self.cfg.output)
        for name, pooling in poolings.items():
            parse_pooling(pooling)
            self._check_pooling(pooling, f"poolings.{name}")
        images = _check_frames(images, "encode_image_outputs")
        pooled: dict[str, list[torch.Tensor]] = {name: [] for name in poolings}
        with torch.inference_mode():
            for start in range(0, len(images), self.cfg.batch_size):
                batch = list(images[start:start + self.cfg.batch_size])
                pixels = self.processor(batch, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
                hidden = self._image_hidden(pixels)  # [b, 1 + patches, d]
                for name, pooling in poolings.items():
                    pooled[name].append(self._pool(hidden, pooling))  # [b, k, d]
            feats = {name: torch.cat(parts) for name, parts in pooled.items()}  # [n, k, d]
        return {name: tensor.clone() for name, tensor in feats.items()}  # outside inference mode: trainable inputs

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """[n, h, w, 3] uint8 RGB frames -> [clips * k, d], clips of the model's num_frames in order."""
        return self.encode_videos([frames])[0]

    def encode_videos(self, videos: list[np.ndarray]) -> list[torch.Tensor]:
        """`encode_video` of several frame sequences, their clips batched together (the processor resizes
        every frame to the model's size, so clips of any resolution stack without padding)."""
        self._require(("video",), "encode_video")
        clips: list[np.ndarray] = []  # [T, h, w, 3] each, every video's clips in order
        counts: list[int] = []
        for frames in videos:
            frames = _check_frames(frames, "encode_video")
            cut = frames[clip_indices(len(frames), self._backbone.config.num_frames)]  # [c, T, h, w, 3]
            clips.extend(cut)
            counts.append(len(cut))
        pooled = []
        with torch.inference_mode():
            for start in range(0, len(clips), self.cfg.batch_size):
                batch = [list(clip) for clip in clips[start:start + self.cfg.batch_size]]
                pixels = self.processor(batch, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
                hidden = self._hidden(pixel_values=pixels.to(self.device, self._model.dtype))  # [b, t, d]
                pooled.append(self._pool(hidden))  # [b, k, d]
            feats = torch.cat(pooled)  # [sum c, k, d]
        return [part.flatten(0, 1).clone() for part in feats.split(counts)]  # [c * k, d] each

    def _select_backbone(self) -> torch.nn.Module:
        return select_backbone(self._model, self.model_type)

    def _check_settings(self, config: PreTrainedConfig) -> None:
        """Layer and pooling against the architecture, before any weights load."""
        num_states = config.num_hidden_layers + 1  # embeddings output + one per layer (Whisper: encoder layers)
        check(-num_states <= self.cfg.layer < num_states, "layer",
              f"a hidden_states index in [{-num_states}, {num_states - 1}] for {self.cfg.model}", self.cfg.layer)
        self._check_pooling(self.cfg.pooling, "pooling")

    def _check_pooling(self, pooling: str, key: str) -> None:
        check(pooling not in ("cls", "patches") or prefix_tokens(self.model_type) > 0, key,
              f"mean, none or tokens:K for {self.cfg.model}: a {self.model_type} model has no CLS token", pooling)

    def _require(self, families: tuple[str, ...], method: str) -> None:
        if self.family not in families:
            expected = sorted(t for t, f in FAMILIES.items() if f in families)
            raise ValueError(f"{method}: {self.cfg.model} is a {self.model_type} model, which encodes "
                             f"{FAMILY_INPUT[self.family]}; {method} needs one of {expected}")

    def _hidden(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self._backbone(**inputs, output_hidden_states=True).hidden_states[self.cfg.layer]

    def _pool(self, hidden: torch.Tensor, pooling: str | None = None, to_cpu: bool = True) -> torch.Tensor:
        """[b, t, d] in the model dtype -> [b, k, d] float32 (on the CPU unless to_cpu=False), by `pooling`
        (default: the config's)."""
        pooling = pooling or self.cfg.pooling
        mode, _ = parse_pooling(pooling)
        if mode in ("mean", "tokens", "patches"):
            hidden = hidden[:, self._prefix_tokens:]  # CLS summarises the patches; don't average it in
        pooled = pool_tokens(hidden.float(), pooling)
        return pooled.cpu() if to_cpu else pooled

    def _waveform_hidden(self, waves: np.ndarray) -> torch.Tensor:
        """HuBERT / wav2vec2: [b, n] -> [b, t, d], one frame per conv-stack stride (20 ms for the base models)."""
        if _conv_frames(waves.shape[1], self._backbone.config) < 1:
            raise ValueError(f"encode_audio: {waves.shape[1]} samples is shorter than one frame of {self.cfg.model}")
        # One waveform per row: the processor normalises each on its own, as it does a single one.
        values = self.processor(list(waves), sampling_rate=AUDIO_SAMPLE_RATE, return_tensors="pt")["input_values"]
        return self._hidden(input_values=values.to(self.device, self._model.dtype))  # [b, n] -> [b, t, d]

    def _whisper_hidden(self, wave: np.ndarray) -> torch.Tensor:
        """Whisper encoder: [n] -> [1, t, d], over 30 s chunks with each chunk's padding frames dropped."""
        chunk = self.processor.n_samples  # the encoder only accepts full 30 s windows
        stride = self._backbone.conv1.stride[0] * self._backbone.conv2.stride[0]
        pieces = [wave[i:i + chunk] for i in range(0, wave.size, chunk)]
        kept = []
        for start in range(0, len(pieces), self.cfg.batch_size):
            batch = pieces[start:start + self.cfg.batch_size]
            mels = self.processor(batch, sampling_rate=AUDIO_SAMPLE_RATE, return_tensors="pt")["input_features"]
            hidden = self._hidden(input_features=mels.to(self.device, self._model.dtype))  # [b, 1500, d]
            for piece, states in zip(batch, hidden):
                # ceil(samples / hop) mel frames, then the convs stride them: 1 s -> 100 mel -> 50 frames.
                frames = math.ceil(math.ceil(piece.size / self.processor.hop_length) / stride)
                kept.append(states[:frames])  # [frames, d]
        return torch.cat(kept)[None]  # [1, t, d]

    def _image_features(self, pixels: torch.Tensor, to_cpu: bool = True) -> torch.Tensor:
        """[b, 3, H, W] -> [b, 1, d] float32 (on the CPU unless to_cpu=False): the checkpoint's own image embedding."""
        embedding = self._model.get_image_features(pixel_values=pixels.to(self.device, self._model.dtype))
        features = embedding.pooler_output.float().unsqueeze(1)
        return features.cpu() if to_cpu else features

    def _image_hidden(self, pixels: torch.Tensor) -> torch.Tensor:
        """[b, 3, H, W] -> [b, 1 + patches, d]."""
        inputs = {"pixel_values": pixels.to(self.device, self._model.dtype)}
        if self.model_type == "vit_mae":
            # With mask_ratio 0 MAE still shuffles patches by random noise; ascending noise keeps them
            # in raster order, and the features deterministic.
            num_patches = self._backbone.embeddings.patch_embeddings.num_patches
            noise = torch.arange(num_patches, dtype=torch.float32, device=self.device)
            inputs["noise"] = noise.expand(len(pixels), -1)  # [b, patches]
        return self._hidden(**inputs)


def select_backbone(model: torch.nn.Module, model_type: str) -> torch.nn.Module:
    """The part of a loaded checkpoint that encodes: a dual tower's vision tower, Whisper's encoder, else all of it."""
    if model_type in DUAL_TOWER_TYPES:
        return model.vision_model
    if model_type == "whisper":
        return model.get_encoder()  # WhisperModel is encoder-decoder
    return model


def _check_frames(images: np.ndarray, method: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0 or images.dtype != np.uint8:
        raise ValueError(f"{method}: expected uint8 RGB frames [n >= 1, h, w, 3], "
                         f"got {images.dtype} {images.shape}")
    return images


def _conv_frames(num_samples: int, config: PreTrainedConfig) -> int:
    """Frames the wav2vec2-style conv feature stack makes from num_samples (no padding)."""
    frames = num_samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        frames = (frames - kernel) // stride + 1
    return frames


# settings -> (model_fingerprint at load time, encoder)
_LOADED: dict[tuple, tuple[str, FrozenEncoder]] = {}


def load_encoder(cfg: EncoderConfig) -> FrozenEncoder:
    """The encoder for `cfg`, loaded once per process and shared by every later call with equal settings.

    A checkpoint rewritten in place (same path, new weights) is loaded again rather than served stale.
    """
    from emoreason.encoders.landmarks import LandmarkEncoder, is_landmark_encoder

    if is_landmark_encoder(cfg.model):
        return LandmarkEncoder(cfg)  # no weights to load or share
    key = dataclasses.astuple(cfg)
    fingerprint = model_fingerprint(cfg.model)
    if key not in _LOADED or _LOADED[key][0] != fingerprint:
        with quiet_hf_progress():
            _LOADED[key] = (fingerprint, FrozenEncoder(cfg))
    return _LOADED[key][1]
