"""The tiny local LLM: builds, reloads offline, generates, renders ChatML, takes a LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

from emoreason.model.tiny_llm import build_tiny_llm

EMOTIONS = ["happy", "sad", "angry", "surprised", "neutral", "worried", "fearful", "disgusted"]


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory) -> str:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny") / "llm")


@pytest.fixture(scope="module")
def tokenizer(llm_dir):
    return AutoTokenizer.from_pretrained(llm_dir)


@pytest.fixture(scope="module")
def model(llm_dir):
    return AutoModelForCausalLM.from_pretrained(llm_dir).eval()


def test_reloads_as_a_small_qwen2(model, tokenizer):
    config = model.config
    assert config.model_type == "qwen2" and not config.tie_word_embeddings
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (64, 2, 2, 1)
    assert config.vocab_size == len(tokenizer) <= 512
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id == config.eos_token_id


def test_emotion_words_are_short(tokenizer):
    for word in EMOTIONS:
        assert 1 <= len(tokenizer.tokenize(word)) <= 2, word
        assert 1 <= len(tokenizer.tokenize(f" {word}")) <= 2, word


def test_tokenizer_json_and_auto_tokenizer_agree(llm_dir, tokenizer):
    # AutoTokenizer rebuilds Qwen2's pipeline from the checkpoint; it must match what was trained.
    text = "Observations: the voice trembles (pitch 220 Hz).\n\n  The subtitle reads: «I can't!» 😀 Conclusion: sad."
    ids = tokenizer(text).input_ids
    assert ids == Tokenizer.from_file(str(Path(llm_dir) / "tokenizer.json")).encode(text).ids
    assert tokenizer.decode(ids) == text


def test_chat_template_prefixes(tokenizer):
    conversation = [
        {"role": "system", "content": "You recognise emotions."},
        {"role": "user", "content": "What emotion is shown?"},
        {"role": "assistant", "content": "Conclusion: happy."},
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Observations: a wide smile."},
    ]
    full = tokenizer.apply_chat_template(conversation, tokenize=False)
    assert full.startswith("<|im_start|>system\nYou recognise emotions.<|im_end|>\n<|im_start|>user\n")
    for end in range(1, len(conversation)):
        prefix = tokenizer.apply_chat_template(conversation[:end], tokenize=False)
        assert full.startswith(prefix)
        if conversation[end]["role"] == "assistant":
            prompt = tokenizer.apply_chat_template(conversation[:end], tokenize=False, add_generation_prompt=True)
            assert prompt == prefix + "<|im_start|>assistant\n" and full.startswith(prompt)


def test_greedy_generation_is_deterministic(model, tokenizer):
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What emotion?"}], tokenize=False,
                                           add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt")
    settings = dict(max_new_tokens=6, do_sample=False, min_new_tokens=6)
    first = model.generate(**inputs, **settings)
    assert first.shape == (1, inputs.input_ids.shape[1] + 6)
    assert torch.equal(first, model.generate(**inputs, **settings))
    # The multimodal model generates from embeddings; the same prompt as embeddings gives the same tokens.
    embeds = model.get_input_embeddings()(inputs.input_ids)
    from_embeds = model.generate(inputs_embeds=embeds, attention_mask=inputs.attention_mask, **settings)
    assert torch.equal(from_embeds[:, -6:], first[:, -6:])


def test_rebuild_into_a_complete_dir_is_a_no_op(llm_dir):
    weights = Path(llm_dir) / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_llm(llm_dir, seed=7) == llm_dir
    assert weights.stat().st_mtime_ns == before
    assert sorted(p.name for p in Path(llm_dir).parent.iterdir()) == ["llm"]  # no staging dirs left behind


def test_same_seed_same_checkpoint_and_caller_rng_untouched(llm_dir, tmp_path):
    rng = torch.get_rng_state()
    again = build_tiny_llm(tmp_path / "empty_dir_is_fine")
    assert torch.equal(torch.get_rng_state(), rng)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (Path(again) / name).read_bytes() == (Path(llm_dir) / name).read_bytes(), name


def test_refuses_a_foreign_non_empty_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a complete tiny LLM"):
        build_tiny_llm(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_lora_attaches_and_trains(llm_dir, tokenizer):
    peft = pytest.importorskip("peft")
    base = AutoModelForCausalLM.from_pretrained(llm_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert len(trainable) == 2 * 4 * 2  # (A, B) x 4 projections x 2 layers
    ids = tokenizer("Conclusion: the speaker is happy.", return_tensors="pt").input_ids
    lora(input_ids=ids, labels=ids).loss.backward()
    # B starts at zero, so only B gets a gradient on the first step.
    assert all(p.grad is not None for name, p in lora.named_parameters() if "lora_B" in name)
