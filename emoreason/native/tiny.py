"""Tiny random-weight twins of the native backbones, built from their transformers configs, for tests and demos.

Each twin is saved as a hub-style folder: config.json + model.safetensors, a locally trained tokenizer
carrying the special tokens the real tokenizer has (the same strings, as single tokens), the image
processor / feature extractor configs, the video processor config and a processor_config.json. Where
torchvision imports, AutoProcessor.from_pretrained loads the folder whole; here it cannot (transformers'
video processors need torchvision), and emoreason.native.processor loads the same files part by part.

Sizes: hidden 64 (head_dim 32, which vLLM's CPU attention accepts), 2 LLM layers, a 1-2 block vision
tower of width 32 with the real patch sizes (14 px patches, 2x2 merge, time pairs), so real frame
sizes give real token counts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import transformers as tf

from emoreason.atomic import replace_dir, write_json_atomic, write_text_atomic
from emoreason.hf_quiet import quiet_hf_progress
from emoreason.model.tiny_llm import train_tiny_tokenizer
from emoreason.native.arch import ARCHS, NativeArch

TINY_KINDS: tuple[str, ...] = ("qwen2_5_vl", "qwen2_5_omni_thinker", "internvl")

CHATML = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# The real tokenizers' multimodal tokens, in their vocabulary order. `named` are the ones a processor
# reads as tokenizer attributes (tokenizer.image_token, tokenizer.start_image_token, ...).
_TOKENS: dict[str, dict] = {
    "qwen2_5_vl": {
        "tokens": ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"],
        "named": {},
    },
    "qwen2_5_omni_thinker": {
        "tokens": ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"],
        "named": {
            "image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
            "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
            "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
        },
    },
    "internvl": {
        "tokens": ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
        "named": {
            "start_image_token": "<img>", "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>",
        },
    },
}

# Frame size limits of the twins' processors: a 96x128 clip frame becomes 84x140 pixels, 6x10 patches,
# 15 merged tokens per time pair; a small budget keeps CPU steps fast.
TINY_VIDEO_MAX_PIXELS = 112 * 112
TINY_IMAGE_MAX_PIXELS = 112 * 112
TINY_MIN_PIXELS = 56 * 56
INTERNVL_TINY_IMAGE_SIZE = 56  # 4x4 patches of 14 px, pixel-shuffled by 0.5: 4 tokens per frame


def chat_template(arch: NativeArch) -> str:
    """ChatML that renders string contents as they are and list contents (HF's typed items) with the
    backbone's placeholders, so one conversation renders the same either way."""
    media = "".join(
        f"{{% elif item['type'] == '{m}' %}}{{{{ {json.dumps(arch.placeholders[m])} }}}}" for m in arch.modalities
    )
    return (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'text' %}{{ item['text'] }}" + media + "{% endif %}"
        "{% endfor %}{% endif %}"
        "{{ '<|im_end|>\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


def build_tokenizer(kind: str, corpus: list[str] | None = None, vocab_size: int = 512) -> tf.PreTrainedTokenizerFast:
    """The tiny LLM's BPE plus `kind`'s multimodal special tokens and chat template."""
    arch = ARCHS[kind]
    base = train_tiny_tokenizer(corpus, vocab_size)
    spec = _TOKENS[kind]
    backend = base.backend_tokenizer
    backend.add_special_tokens([tf.AddedToken(t, special=True, normalized=False) for t in spec["tokens"]])
    kwargs = {"extra_special_tokens": dict(spec["named"])} if spec["named"] else {}
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        chat_template=chat_template(arch), model_max_length=4096, **kwargs,
    )
    for token in spec["tokens"]:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer splits the special token {token!r} into {ids}")
    return tokenizer


def _text_config(tokenizer, **extra) -> dict:
    # mrope_section halves of head_dim 32 (64 / 2 heads): 4 + 6 + 6 = 16 rotary pairs for t, h, w.
    return dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        # As in tiny_llm: a wide init lets a random LM head reach confident logits through its final norm.
        bos_token_id=None, initializer_range=0.2, **extra,
    )


_QWEN_VISION = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                    temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1], out_hidden_size=64)
_MROPE = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 1_000_000.0}


def build_config(kind: str, tokenizer) -> tf.PreTrainedConfig:
    ids = tokenizer.convert_tokens_to_ids
    if kind == "qwen2_5_vl":
        return tf.Qwen2_5_VLConfig(
            text_config=_text_config(tokenizer, rope_parameters=dict(_MROPE)), vision_config=dict(_QWEN_VISION, tokens_per_second=2),
            image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        )
    if kind == "qwen2_5_omni_thinker":
        return tf.Qwen2_5OmniThinkerConfig(
            text_config=_text_config(tokenizer, rope_parameters=dict(_MROPE)),
            vision_config=dict(_QWEN_VISION),
            audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64,
                              d_model=32, output_dim=64, n_window=100, max_source_positions=1500),
            audio_token_index=ids("<|AUDIO|>"), image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"),
            audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
            vision_start_token_id=ids("<|vision_bos|>"), vision_end_token_id=ids("<|vision_eos|>"),
            user_token_id=ids("user")[0] if isinstance(ids("user"), list) else ids("user"),
        )
    if kind == "internvl":
        size = INTERNVL_TINY_IMAGE_SIZE
        return tf.InternVLConfig(
            text_config=dict(_text_config(tokenizer), model_type="qwen2", tie_word_embeddings=False),
            vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                               image_size=[size, size], patch_size=[14, 14]),
            image_token_id=ids("<IMG_CONTEXT>"), image_seq_length=(size // 14) ** 2 // 4, downsample_ratio=0.5,
            tie_word_embeddings=False,
        )
    raise ValueError(f"kind: {kind!r} has no tiny twin; expected one of {list(TINY_KINDS)}")


def _qwen_video_processor_config(processor_type: str) -> dict:
    # What Qwen2VLVideoProcessor.save_pretrained writes; written by hand because the class cannot be
    # built without torchvision. do_sample_frames=False: emoreason samples frames itself.
    return {
        "video_processor_type": processor_type, "do_resize": True, "do_rescale": True, "do_normalize": True,
        "do_convert_rgb": True, "do_sample_frames": False, "resample": 3, "rescale_factor": 1 / 255,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "size": {"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_VIDEO_MAX_PIXELS},
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "min_frames": 4, "max_frames": 768,
    }


def save_processor_files(kind: str, tokenizer, out_dir: Path) -> None:
    """The processor's files, as the real checkpoints lay them out."""
    tokenizer.save_pretrained(out_dir)
    write_text_atomic(out_dir / "chat_template.jinja", tokenizer.chat_template)
    if kind in ("qwen2_5_vl", "qwen2_5_omni_thinker"):
        image = tf.Qwen2VLImageProcessorPil(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_IMAGE_MAX_PIXELS)
        image.save_pretrained(out_dir)
        _retype(out_dir / "preprocessor_config.json", image_processor_type="Qwen2VLImageProcessor")
        write_json_atomic(out_dir / "video_preprocessor_config.json", _qwen_video_processor_config("Qwen2VLVideoProcessor"))
        processor_class = "Qwen2_5_VLProcessor" if kind == "qwen2_5_vl" else "Qwen2_5OmniProcessor"
        extra: dict = {}
        if kind == "qwen2_5_omni_thinker":
            # A real Omni preprocessor_config.json holds the image processor and the Whisper feature
            # extractor's keys together; a twin keeps that layout.
            features = tf.WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
            merged = json.loads((out_dir / "preprocessor_config.json").read_text()) | features.to_dict()
            merged["feature_extractor_type"] = "WhisperFeatureExtractor"
            merged["image_processor_type"] = "Qwen2VLImageProcessor"
            write_json_atomic(out_dir / "preprocessor_config.json", merged)
    else:
        size = INTERNVL_TINY_IMAGE_SIZE
        image = tf.GotOcr2ImageProcessorPil(size={"height": size, "width": size}, crop_to_patches=False)
        image.save_pretrained(out_dir)
        _retype(out_dir / "preprocessor_config.json", image_processor_type="GotOcr2ImageProcessor")
        video = {
            "video_processor_type": "InternVLVideoProcessor", "do_resize": True, "do_rescale": True,
            "do_normalize": True, "do_convert_rgb": True, "do_sample_frames": False, "resample": 3,
            "rescale_factor": 1 / 255, "image_mean": image.image_mean, "image_std": image.image_std,
            "size": {"height": size, "width": size}, "initial_shift": True,
        }
        write_json_atomic(out_dir / "video_preprocessor_config.json", video)
        processor_class = "InternVLProcessor"
        extra = {"image_seq_length": (size // 14) ** 2 // 4}
    write_json_atomic(out_dir / "processor_config.json", {"processor_class": processor_class, **extra})


def _retype(path: Path, **fields) -> None:
    # The PIL fallback saves its own class name; the real checkpoints name the default class, which
    # AutoImageProcessor maps to the torchvision or the PIL backend as the machine allows.
    data = json.loads(path.read_text())
    data.update(fields)
    data.pop("processor_class", None)
    write_json_atomic(path, data)


def build_tiny_native(kind: str, out_dir: str | os.PathLike, seed: int = 0, corpus: list[str] | None = None) -> str:
    """Build the tiny twin of `kind` (one of TINY_KINDS) into out_dir and return that path.

    An existing complete twin is reused as it is; the folder appears in one rename, so a crash or a
    concurrent builder never leaves half of one.
    """
    if kind not in TINY_KINDS:
        raise ValueError(f"kind: {kind!r} has no tiny twin; expected one of {list(TINY_KINDS)}")
    target = Path(out_dir)
    if (target / "model.safetensors").is_file() and (target / "processor_config.json").is_file():
        return str(target)
    with replace_dir(target) as staging:
        tokenizer = build_tokenizer(kind, corpus)
        config = build_config(kind, tokenizer)
        with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
            torch.manual_seed(seed)
            model = getattr(tf, ARCHS[kind].model_class)(config)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        with quiet_hf_progress():
            model.save_pretrained(staging)
        save_processor_files(kind, tokenizer, staging)
    return str(target)
