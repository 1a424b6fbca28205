"""The native kind through the project's own commands: `emoreason train` (checkpoints, resume), `export`, the hf
backend and `emoreason serve` answering the real openai client with a video part; the vllm backend giving the hf
backend's greedy answers on the same clip and streaming real deltas, or, where torchvision cannot import, saying so."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import openai
import pytest
from serving_helpers import running_server

from emoreason.config import ConfigError

QUESTION = "Which emotion does the person express? Answer with one label from: angry, happy, sad, surprised."
TRAIN_CONFIG = "configs/train/tiny_native.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from emoreason.demo_native import prepare_native_data

    return prepare_native_data(tmp_path_factory.mktemp("native_ws"), num_per_class=2, seed=0)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """`emoreason train` on the tiny twin: 4 steps, a checkpoint every 2; then resumed to 6 steps."""
    from emoreason.train.cli import main

    out = tmp_path_factory.mktemp("native_train") / "run"
    args = ["--config", TRAIN_CONFIG, *data.train_overrides(out), "optim.batch_size=4", "optim.logging_steps=1",
            "optim.save_steps=2", "optim.save_total_limit=2"]
    assert main(args + ["optim.max_steps=4"]) == 0
    shutil.rmtree(out / "model")  # an unfinished run: the final model never got written
    assert main(args + ["optim.max_steps=6"]) == 0
    return out


def test_train_checkpoints_resume_and_final_model(trained, capsys):
    checkpoints = sorted(p.name for p in trained.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4", "checkpoint-6"]
    for name in checkpoints:
        files = json.loads((trained / name / "emoreason_checkpoint.json").read_text())["files"]
        assert {"emoreason_native.json", "adapter/adapter_model.safetensors", "full.safetensors", "trainer_state.json"} <= set(files)
    state = json.loads((trained / "checkpoint-6" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in state["log_history"] if "loss" in h] == list(range(1, 7))  # steps 5-6 resumed, not redone
    assert min(losses[3:]) < losses[0], losses
    model = trained / "model"
    assert (model / "emoreason_native.json").is_file() and (model / "adapter").is_dir() and (model / "full.safetensors").is_file()


def test_export_and_hf_backend_give_the_trained_answers(trained, data, tmp_path):
    from emoreason.serving.backends import load_engine
    from emoreason.serving.engine import GenerationRequest, MediaInput
    from emoreason.serving.export import export_model
    from emoreason.serving.native_engine import NativeHFEngine

    exported = export_model(trained / "model", tmp_path / "export")
    assert not (exported / "adapter").exists() and (exported / "model.safetensors").is_file()
    clip = data.train.parent / "clips" / "syn_00000.mp4"
    requests = [GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", clip)], max_tokens=5),
                GenerationRequest([{"role": "user", "content": "<video> " + QUESTION}], max_tokens=3)]
    answers = {}
    for directory in (trained / "model", exported):
        engine = load_engine("hf", directory)
        assert isinstance(engine, NativeHFEngine)
        completions = engine.generate(requests)
        assert completions[0].prompt_tokens > completions[1].prompt_tokens + 16  # the clip's video tokens
        assert completions[1].completion_tokens <= 3
        answers[directory] = [c.text for c in completions]
        assert "".join(engine.stream(requests[0])) == completions[0].text
    assert answers[trained / "model"] == answers[exported]


def test_openai_client_against_serve_with_a_video_part(trained, data, tmp_path):
    from emoreason.serving.native_engine import NativeHFEngine
    from emoreason.serving.server import ServerSettings, create_app

    media_root = data.train.parent / "clips"
    engine = NativeHFEngine(trained / "model", max_batch_size=4)
    settings = ServerSettings(media_root=media_root, max_tokens_limit=32)
    with running_server(create_app(engine, settings)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
        messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION},
                                                 {"type": "video_url", "video_url": {"url": "syn_00001.mp4"}}]}]
        reply = client.chat.completions.create(model=engine.model_name, messages=messages, max_tokens=6, temperature=0)
        assert reply.usage.prompt_tokens > 60 and 0 < reply.usage.completion_tokens <= 6
        chunks = client.chat.completions.create(model=engine.model_name, messages=messages, max_tokens=6, temperature=0, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == reply.choices[0].message.content
        (tmp_path / "bad.mp4").write_bytes(b"\x00" * 64)
        shutil.copy(tmp_path / "bad.mp4", media_root / "broken.mp4")
        bad = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, {"type": "video_url", "video_url": {"url": "broken.mp4"}}]}]
        try:
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(model=engine.model_name, messages=bad, max_tokens=4)
        finally:
            (media_root / "broken.mp4").unlink()
        assert refused.value.status_code == 415 and "not a media file" in str(refused.value)


def test_vllm_backend_on_a_native_model_names_torchvision(trained, tmp_path):
    from emoreason.serving.backends import BackendError, load_engine
    from emoreason.serving.export import export_model
    from emoreason.serving.native_vllm import torchvision_problem

    if torchvision_problem() is None:
        pytest.skip("torchvision imports here: the native vLLM path is exercised by a vLLM-vs-hf test instead")
    exported = export_model(trained / "model", tmp_path / "export")
    with pytest.raises(BackendError, match=r"native model .*import torchvision.*--backend hf"):
        load_engine("vllm", exported)


@pytest.fixture(scope="module")
def native_vllm(trained, tmp_path_factory):
    """(exported dir, NativeVLLMEngine on it), shared by the vllm tests: one engine start is 3-4 min on 2 cores."""
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    from emoreason.serving.backends import load_engine
    from emoreason.serving.export import export_model
    from emoreason.serving.native_vllm import NativeVLLMEngine, torchvision_problem

    if torchvision_problem() is not None:
        pytest.skip(f"torchvision does not import here ({torchvision_problem()}): the refusal test covers this machine")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the twin needs a few MiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    exported = export_model(trained / "model", tmp_path_factory.mktemp("native_vllm") / "export")
    engine = load_engine("vllm", exported, max_batch_size=4)
    assert isinstance(engine, NativeVLLMEngine)
    yield exported, engine
    engine.close()


@pytest.mark.slow
def test_vllm_backend_gives_the_hf_backends_greedy_answers_on_a_clip(native_vllm, data):
    """vLLM's own Qwen2.5-VL model file and multimodal processing (frames + metadata as multi_modal_data) against
    the backbone's generate on our processor's inputs: same prompt length (the clip's video tokens), same answer."""
    from emoreason.serving.backends import load_engine
    from emoreason.serving.engine import GenerationRequest, MediaInput

    exported, engine = native_vllm
    clips = data.train.parent / "clips"
    requests = [GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", clips / name)], max_tokens=6)
                for name in ("syn_00000.mp4", "syn_00001.mp4")]
    requests.append(GenerationRequest([{"role": "user", "content": QUESTION}], max_tokens=4))
    hf = load_engine("hf", exported).generate(requests)
    vllm = engine.generate(requests)
    assert [(c.text, c.prompt_tokens, c.completion_tokens) for c in vllm] == [(c.text, c.prompt_tokens, c.completion_tokens) for c in hf]
    assert hf[0].prompt_tokens > hf[2].prompt_tokens + 16  # the clip's video tokens reached both


@pytest.mark.slow
def test_vllm_stream_sends_deltas_that_join_to_the_generate_text(native_vllm, data, tmp_path):
    """The native vllm backend streams as generation goes (not the whole text at the end); bad media raises at
    the call, before any text; a stream closed early (a client that hung up) frees its vLLM request."""
    from emoreason.media.errors import MediaError
    from emoreason.serving.engine import GenerationRequest, MediaInput

    _, engine = native_vllm
    clip = data.train.parent / "clips" / "syn_00002.mp4"
    request = GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", clip)], max_tokens=16)
    (whole,) = engine.generate([request])
    assert whole.completion_tokens > 1
    deltas = list(engine.stream(request))
    assert len(deltas) > 1, deltas
    assert "".join(deltas) == whole.text

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(MediaError):
        engine.stream(GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", broken)]))

    early = engine.stream(request)
    next(early)
    early.close()
    assert engine.runtime.engine.get_num_unfinished_requests() == 0


def test_native_config_errors_name_the_key_before_weights_load(data, tmp_path):
    from emoreason.train.kinds import load_any_train_config
    from emoreason.train.native_config import NativeTrainConfig

    base = data.train_overrides(tmp_path / "out")
    cfg = load_any_train_config(TRAIN_CONFIG, base + ["stage=align"])
    assert isinstance(cfg, NativeTrainConfig) and list(cfg.model.components) == ["connector"]
    with pytest.raises(ConfigError, match=r"stage.*'nope'"):
        load_any_train_config(TRAIN_CONFIG, base + ["stage=nope"])
    with pytest.raises(ConfigError, match=r"init_from.*stage grpo starts from one"):
        load_any_train_config(TRAIN_CONFIG, base + ["stage=grpo"])
    with pytest.raises(ConfigError, match=r"components.audio.*qwen2_5_vl has no audio component"):
        load_any_train_config(TRAIN_CONFIG, base + ["model.components.audio.mode=lora"])
    with pytest.raises(ConfigError, match=r"model.frames.num_frames.*over the video processor's max_frames"):
        load_any_train_config(TRAIN_CONFIG, base + ["model.frames.num_frames=100000"])
    with pytest.raises(ConfigError, match=r"model.kind.*'nativ' is not a model kind"):
        load_any_train_config(TRAIN_CONFIG, base + ["model.kind=nativ"])
