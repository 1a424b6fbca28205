"""A tiny random-weight Qwen2 causal LM with its own byte-level BPE tokenizer, for tests and CPU demos.

Saved like a hub checkpoint, so AutoModelForCausalLM and AutoTokenizer reload it offline. The
tokenizer is trained here on a small built-in corpus of emotion words and instruction phrases, so
the words the data uses most stay short (one or two tokens) within a vocabulary of a few hundred.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers as tf
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from emoreason.atomic import replace_dir
from emoreason.hf_quiet import quiet_hf_progress

SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# ChatML, as Qwen2 writes it (without Qwen's default system turn). Every turn is rendered on its own,
# so a conversation's rendering starts with the rendering of any of its prefixes; the processor
# tokenizes prompt and answer spans separately and relies on that.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_EMOTIONS: tuple[str, ...] = (
    "happy", "sad", "angry", "surprised", "neutral", "worried", "fearful", "disgusted",
    "happiness", "sadness", "anger", "surprise", "fear", "disgust", "excited", "calm", "frustrated", "anxious",
)
_PHRASES: tuple[str, ...] = (
    "What emotion does the person in the video express?",
    "What emotion is the speaker feeling? Explain your reasoning.",
    "Observations: the speaker smiles and the voice is bright.",
    "Observations: the brows are furrowed and the voice is loud.",
    "Interpretation: the facial expression and the tone of voice agree.",
    "Interpretation: the words and the face tell different stories.",
    "Conclusion: the person is happy.",
    "Conclusion: the speaker feels sad.",
    "The subtitle reads: I can't believe this happened!",
    "The subtitle reads: everything is fine, thank you.",
    "The person frowns, the eyebrows rise, the mouth opens, the eyes widen.",
    "Clues: smile, frown, tears, raised voice, trembling voice, clenched jaw, wide eyes, laughter, sigh.",
    "The audio has a high pitch and a fast pace; the video shows a tense face.",
    "You are an expert in emotion recognition from audio, faces, video and subtitles.",
    "Answer with one word. The answer is",
)


def _default_corpus() -> list[str]:
    emotion_lines = [f"{e} {e.capitalize()} the speaker looks {e} and sounds {e}." for e in _EMOTIONS]
    role_lines = [f"{role}\n" for role in ("system", "user", "assistant")]
    # Repetition weights emotion and chat role words so BPE merges them whole before rarer words.
    return list(_PHRASES) + (emotion_lines + role_lines) * 8


def _train_tokenizer(corpus: list[str], vocab_size: int) -> tf.PreTrainedTokenizerFast:
    # Qwen2's own pipeline (byte-level, so any text round-trips): AutoTokenizer reloads this checkpoint
    # as a Qwen2Tokenizer, which rebuilds these steps, so training must use the same ones.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      chat_template=CHAT_TEMPLATE, model_max_length=1024)


def train_tiny_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512) -> tf.PreTrainedTokenizerFast:
    """The tiny LLM's tokenizer, trained on the built-in corpus plus `corpus`, for other tiny models to extend."""
    return _train_tokenizer(_default_corpus() + list(corpus or []), vocab_size)


def _build_model(tokenizer: tf.PreTrainedTokenizerFast) -> tf.Qwen2ForCausalLM:
    # head_dim 32 (64 / 2 heads): vLLM's CPU attention kernels take head sizes of 32 and up only.
    config = tf.Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=128, max_position_embeddings=1024, tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        # Wider than the usual 0.02: a random LLM's output head must be able to reach confident
        # logits through its final RMSNorm, or LoRA on attention alone cannot teach it an answer.
        initializer_range=0.2,
    )
    model = tf.Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


_SAVED_FILES: tuple[str, ...] = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                 "tokenizer_config.json")


def build_tiny_llm(out_dir: str | os.PathLike, seed: int = 0, corpus: list[str] | None = None,
                   vocab_size: int = 512) -> str:
    """Build the tiny LLM and its tokenizer into out_dir and return that path.

    `corpus` adds lines to the built-in tokenizer corpus. An existing complete directory is reused as
    is, whatever seed, corpus or vocab_size built it.
    """
    target = Path(out_dir)
    if _is_complete(target):
        return str(target)
    if target.exists() and any(target.iterdir()):
        # Never half-written by us (see the rename below), so it holds someone else's files: leave them.
        raise FileExistsError(f"build_tiny_llm: {target} exists, is not empty and is not a complete tiny LLM")
    # Staged beside `target` and swapped in whole, so a crash or a concurrent builder never leaves a
    # half-written checkpoint there.
    with replace_dir(target) as staging:
        tokenizer = _train_tokenizer(_default_corpus() + list(corpus or []), vocab_size)
        with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
            torch.manual_seed(seed)
            model = _build_model(tokenizer)
        with quiet_hf_progress():
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    return str(target)


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _SAVED_FILES)
