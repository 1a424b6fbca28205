"""A native backbone's processor, loaded part by part, turning decoded media into its model inputs.

The backbone's own processor (Qwen2_5_VLProcessor, Qwen2_5OmniProcessor, InternVLProcessor) cannot be
built without torchvision: each has a required video processor, and transformers' video processors
import torchvision. So this class loads the parts that do load (AutoTokenizer, AutoImageProcessor,
which falls back to the PIL backend, and AutoFeatureExtractor for Whisper features), reads the video
processor's config for emoreason.native.video, and writes each media item's placeholder expansion
exactly as the backbone's processor would (replace_image_token / replace_video_token /
replace_multimodal_special_tokens), so input ids and tensors match what AutoProcessor gives where it
loads (tests/test_native_processor.py checks that where torchvision imports).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import transformers as tf

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.media.errors import MediaError
from emoreason.native.arch import NativeArch, arch_for
from emoreason.native.video import QwenVideoSettings, qwen_video_inputs


@dataclasses.dataclass
class ModalityInputs:
    """One media item, processed: the tensors the backbone takes and the text its placeholder becomes."""

    modality: str
    tensors: dict[str, torch.Tensor]
    """Backbone input name -> this item's part (concatenated along dim 0 across a batch)."""
    text: str
    """The expansion of the backbone's placeholder for this item (pad tokens included)."""
    num_tokens: int
    """LLM positions the item's features fill (pad tokens in `text`)."""


@dataclasses.dataclass(frozen=True)
class NativeMediaSettings:
    """Per-run overrides of the backbone processor's frame-size limits (null keeps the processor's)."""

    video_max_pixels: int | None = None
    """Largest frame, in pixels, for video (ms-swift's VIDEO_MAX_PIXELS)."""
    video_min_pixels: int | None = None
    image_max_pixels: int | None = None


PROCESSOR_FILES: tuple[str, ...] = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
    "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "video_preprocessor_config.json",
    "processor_config.json",
)
"""The files of a backbone's processor, copied byte for byte into saved and exported model directories."""


def resolve_file(source: str | Path, name: str) -> Path | None:
    """`name` inside a local directory or a hub id's cached snapshot; None when the backbone has no such file."""
    if Path(source).is_dir():
        path = Path(source) / name
        return path if path.is_file() else None
    from transformers.utils import cached_file

    found = cached_file(str(source), name, _raise_exceptions_for_missing_entries=False)
    return Path(found) if found else None


class NativeProcessor:
    """Tokenizer + image processor (+ Whisper feature extractor) of one native backbone directory."""

    def __init__(self, arch: NativeArch, tokenizer, image_processor, feature_extractor=None,
                 video_settings: QwenVideoSettings | None = None, image_seq_length: int | None = None,
                 media: NativeMediaSettings = NativeMediaSettings()):
        self.arch = arch
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.feature_extractor = feature_extractor
        self.video_settings = video_settings
        self.image_seq_length = image_seq_length
        self.media = media
        self.source: str | Path | None = None
        """Where the processor files came from (a directory or a hub id), for save_pretrained."""
        if tokenizer.chat_template is None:
            raise ValueError("the backbone's tokenizer has no chat template; emoreason builds prompts with it")
        self.pad_token_ids = {m: tokenizer.convert_tokens_to_ids(t) for m, t in arch.pad_tokens.items()}
        # Face crops are images to the backbone: they fill image pad positions.
        self.pad_token_ids["face"] = self.pad_token_ids["image"]
        for m, token in arch.pad_tokens.items():
            if self.pad_token_ids[m] in (None, tokenizer.unk_token_id):
                raise ValueError(f"the backbone's tokenizer has no {token!r} token for {m}")

    @classmethod
    def from_pretrained(cls, directory: str | Path, media: NativeMediaSettings = NativeMediaSettings(),
                        model_type: str | None = None) -> NativeProcessor:
        """The processor parts of a local backbone directory or hub id (offline when the hub cache has it).

        model_type: the backbone's, for a directory that holds processor files but no config.json (a
        trained native model directory)."""
        config = tf.AutoConfig.from_pretrained(directory) if model_type is None else None
        arch = arch_for(model_type or config.model_type)
        tokenizer = tf.AutoTokenizer.from_pretrained(directory)
        image_processor = tf.AutoImageProcessor.from_pretrained(directory)
        feature_extractor = tf.AutoFeatureExtractor.from_pretrained(directory) if "audio" in arch.modalities else None
        video_settings = None
        if arch.video_style == "qwen":
            video_cfg = resolve_file(directory, "video_preprocessor_config.json")
            if video_cfg is None:
                raise FileNotFoundError(f"{directory}: the backbone has no video_preprocessor_config.json")
            video_settings = QwenVideoSettings.from_dir(video_cfg.parent, media.video_max_pixels, media.video_min_pixels)
        processor_cfg = resolve_file(directory, "processor_config.json")
        extra = json.loads(processor_cfg.read_text()) if processor_cfg is not None else {}
        image_seq_length = extra.get("image_seq_length", getattr(config, "image_seq_length", None))
        if arch.video_style == "frames" and image_seq_length is None:
            raise ValueError(f"{directory}: processor_config.json has no image_seq_length (tokens per image tile)")
        processor = cls(arch, tokenizer, image_processor, feature_extractor, video_settings, image_seq_length, media)
        processor.source = directory
        return processor

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Copy the backbone's processor files into out_dir, unchanged, so AutoProcessor (where it loads)
        and vLLM read the same processor as the original checkpoint."""
        import shutil

        from emoreason.atomic import atomic_path

        if self.source is None:
            raise ValueError("save_pretrained: this NativeProcessor was not loaded with from_pretrained, so it has no files to copy")
        for name in PROCESSOR_FILES:
            found = resolve_file(self.source, name)
            if found is not None:
                with atomic_path(Path(out_dir) / name) as tmp:
                    shutil.copyfile(found, tmp)

    # -- media -> inputs ----------------------------------------------------------------------

    def _image_kwargs(self) -> dict:
        if self.media.image_max_pixels is None:
            return {}
        return {"size": {"shortest_edge": self.image_processor.size["shortest_edge"], "longest_edge": self.media.image_max_pixels}}

    def video_inputs(self, frames: np.ndarray, sampled_fps: float) -> ModalityInputs:
        """frames [n, h, w, 3] uint8 of one clip; sampled_fps: frames per second of clip time they stand for."""
        if self.arch.video_style == "qwen":
            pixels, grid = qwen_video_inputs(frames, self.video_settings)
            n = int(grid.prod()) // self.video_settings.merge_size**2
            # Seconds of clip per temporal patch: positions in time follow the clip, not the frame count.
            seconds = self.video_settings.temporal_patch_size / sampled_fps
            names = ("pixel_values_videos", "video_grid_thw",
                     "video_second_per_grid" if self.arch.model_type == "qwen2_5_omni_thinker" else "second_per_grid_ts")
            tensors = {names[0]: pixels, names[1]: grid[None], names[2]: torch.tensor([seconds])}
            pad = self.arch.pad_tokens["video"]
            start, end = self.arch.placeholders["video"].split(pad)
            return ModalityInputs("video", tensors, start + pad * n + end, n)
        # InternVL: every frame is one image tile, written "FrameK: <img><IMG_CONTEXT>*N</img>".
        pixels = self.image_processor([f for f in frames], return_tensors="pt")["pixel_values"]  # [n, 3, s, s]
        tok = self.tokenizer
        per_frame = tok.start_image_token + tok.context_image_token * self.image_seq_length + tok.end_image_token
        text = "\n".join(f"Frame{i + 1}: {per_frame}" for i in range(len(frames)))
        return ModalityInputs("video", {"pixel_values": pixels}, text, self.image_seq_length * len(frames))

    def image_inputs(self, image: np.ndarray) -> ModalityInputs:
        """image [h, w, 3] uint8 RGB."""
        out = self.image_processor([image], return_tensors="pt", **self._image_kwargs())
        if self.arch.video_style == "qwen":
            merge = self.image_processor.merge_size
            n = int(out["image_grid_thw"][0].prod()) // merge**2
            pad = self.arch.pad_tokens["image"]
            start, end = self.arch.placeholders["image"].split(pad)
            tensors = {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}
            return ModalityInputs("image", tensors, start + pad * n + end, n)
        tok = self.tokenizer
        tiles = int(out["num_patches"][0]) if "num_patches" in out else len(out["pixel_values"])
        n = self.image_seq_length * tiles
        text = tok.start_image_token + tok.context_image_token * n + tok.end_image_token
        return ModalityInputs("image", {"pixel_values": out["pixel_values"]}, text, n)

    def face_inputs(self, crops: np.ndarray) -> ModalityInputs:
        """crops [k, s, s, 3] uint8: one image each, written one after another at the face placeholder."""
        items = [self.image_inputs(crop) for crop in crops]
        tensors = {name: torch.cat([item.tensors[name] for item in items]) for name in items[0].tensors}
        return ModalityInputs("face", tensors, "".join(item.text for item in items), sum(item.num_tokens for item in items))

    def audio_inputs(self, wave: np.ndarray) -> ModalityInputs:
        """wave [n] float32 mono at 16 kHz -> Whisper log-mels and the audio tower's token count."""
        if self.feature_extractor is None:
            raise ValueError(f"{self.arch.model_type} has no audio tower; audio input needs a backbone such as qwen2_5_omni_thinker")
        limit = self.feature_extractor.n_samples
        if len(wave) > limit:
            # The feature extractor would cut the tail off silently.
            raise MediaError("too_long", None, f"audio of {len(wave) / AUDIO_SAMPLE_RATE:.1f} s is over the feature "
                             f"extractor's chunk_length={self.feature_extractor.chunk_length} s")
        out = self.feature_extractor(wave, sampling_rate=AUDIO_SAMPLE_RATE, padding="max_length",
                                     return_attention_mask=True, return_tensors="pt")
        mask = out["attention_mask"]  # [1, frames]
        # The thinker's audio tower halves the mel frames in its conv stem and again in its pooling.
        lengths = (mask.sum(-1) - 1) // 2 + 1
        n = int((lengths - 2) // 2 + 1)
        tensors = {"input_features": out["input_features"], "feature_attention_mask": mask}
        pad = self.arch.pad_tokens["audio"]
        start, end = self.arch.placeholders["audio"].split(pad)
        return ModalityInputs("audio", tensors, start + pad * n + end, n)
