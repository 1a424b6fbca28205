"""The native hf engine's media pool: concurrent requests decode in serving's DecodePool (each worker its own
NativeFeaturizer and face detector), get the answers they get alone, and the inputs the lock path computes;
`--media-workers 0` keeps the lock, and `load_engine` (serve, chat, infer) hands the engine its media settings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from emoreason.serving.media_stage import MediaStageConfig
from native_twins import twin_dir

QUESTION = "<video> <face> Which emotion does the person express?"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Synthetic face clips of four classes (different faces and motion), one with a face the detector misses is
    fine: each request reports what it has."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("native_serving_clips")
    return [root / s.media.video for s in generate_dataset(root, SyntheticConfig(num_per_class=1, seed=5))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from emoreason.features.media_config import FaceCropConfig
    from emoreason.media.video import FrameSampling
    from emoreason.native.config import ComponentTraining, NativeModelConfig
    from emoreason.native.model import NativeModel, build_processor

    cfg = NativeModelConfig(base=twin_dir(tmp_path_factory, "qwen2_5_vl"), components={"llm": ComponentTraining("lora")},
                            modalities=["video", "face"], frames=FrameSampling(num_frames=4),
                            faces=FaceCropConfig(size=56, detect_every=2))
    out = tmp_path_factory.mktemp("native_serving") / "model"
    NativeModel.build(cfg).save_pretrained(out, build_processor(cfg))
    return out


@pytest.fixture(scope="module")
def engine(model_dir):
    from emoreason.serving.native_engine import NativeHFEngine

    engine = NativeHFEngine(model_dir, max_batch_size=4)  # the default media settings: a pool of 2 threads
    yield engine
    engine.close_media_stage()


def requests_for(clips):
    from emoreason.serving.engine import GenerationRequest, MediaInput

    return [GenerationRequest(messages=[{"role": "user", "content": QUESTION}], media=[MediaInput("video", c)],
                              max_tokens=6) for c in clips]


def assert_same_inputs(result, expected) -> None:
    assert result.absent == expected.absent and set(result.inputs) == set(expected.inputs)
    assert result.frame_times == expected.frame_times
    for m, item in expected.inputs.items():
        got = result.inputs[m]
        assert (got.text, got.num_tokens) == (item.text, item.num_tokens), m
        assert set(got.tensors) == set(item.tensors), m
        for name, tensor in item.tensors.items():
            assert torch.equal(got.tensors[name], tensor), (m, name)


def test_concurrent_requests_get_their_answers_alone(engine, clips):
    from test_media_stage import answers_alone_and_concurrently  # the projector engines' check, on the native twin

    from emoreason.serving.media_stage import DecodePool

    assert isinstance(engine.media_stage, DecodePool) and engine.media_stage.workers == 2
    alone, together = answers_alone_and_concurrently(engine, clips)  # its question has no placeholder: media in front
    assert together == alone


def test_pool_inputs_equal_the_lock_paths(engine, clips):
    from emoreason.serving.native_engine import _featurize

    with ThreadPoolExecutor(len(clips)) as pool:
        pooled = list(pool.map(lambda c: engine.media_stage.run(_featurize, {"video": c}, engine.modalities), clips))
    faces_seen = 0
    for clip, result in zip(clips, pooled, strict=True):
        assert_same_inputs(result, engine.featurizer.featurize({"video": clip}, engine.modalities))
        faces_seen += "face" in result.inputs
    assert faces_seen >= 1  # the workers' own detectors found faces (at detect_every=2, as the config says)


def test_no_workers_keeps_the_lock_and_load_engine_passes_the_media_settings(model_dir, engine, clips):
    from emoreason.serving.backends import load_engine

    serial = load_engine("hf", model_dir, max_batch_size=4, media_stage=MediaStageConfig(workers=0))
    assert serial.media_stage is None
    # A batch (infer's): the pool prepares its requests at once, the lock one by one; one generate call either way.
    requests = requests_for(clips)
    assert [c.text for c in serial.generate(requests)] == [c.text for c in engine.generate(requests)]
    one = load_engine("hf", model_dir, max_batch_size=4, media_stage=MediaStageConfig(workers=1))
    assert one.media_stage.workers == 1
    one.close_media_stage()


@pytest.mark.slow
def test_process_pool_inputs_equal_the_lock_paths(engine, clips):
    """Spawned workers (for detector plug-ins that hold the GIL): the featurizer pickles across, inputs come back."""
    from emoreason.serving.native_engine import _featurize, native_media_pool

    pool = native_media_pool(engine.featurizer, MediaStageConfig(workers=1, pool="process"))
    try:
        for clip in clips[:2]:
            assert_same_inputs(pool.run(_featurize, {"video": clip}, engine.modalities),
                               engine.featurizer.featurize({"video": clip}, engine.modalities))
    finally:
        pool.close()


def test_vllm_engines_media_in_the_pool_equals_its_callers_decode(model_dir, clips, tmp_path):
    """NativeVLLMEngine._media (its prepare's decode) through the pool, without starting vLLM: each concurrent
    request gets what vllm_media gives it alone; a media fault is still the request's MediaError."""
    import numpy as np

    from emoreason.media.errors import MediaError
    from emoreason.native.model import read_native_config
    from emoreason.serving.media_stage import DecodePool
    from emoreason.serving.native_vllm import NativeVLLMEngine, _no_worker_state, vllm_media

    engine = NativeVLLMEngine.__new__(NativeVLLMEngine)  # the media half only: vLLM's start is the slow tests' job
    engine.cfg = read_native_config(model_dir)
    engine.modalities = ["video"]
    engine._media_pool = DecodePool(_no_worker_state, 2)
    try:
        requests = requests_for(clips)
        with ThreadPoolExecutor(len(requests)) as pool:
            pooled = list(pool.map(engine._media, requests))
        for clip, (data, absent) in zip(clips, pooled, strict=True):
            alone, alone_absent = vllm_media({"video": clip}, ["video"], engine.cfg.frames, engine.cfg.audio.max_seconds)
            assert absent == alone_absent and set(data) == set(alone) == {"video"}
            assert np.array_equal(data["video"][0], alone["video"][0]) and data["video"][1] == alone["video"][1]
        (missing,) = requests_for([tmp_path / "missing.mp4"])
        with pytest.raises(MediaError, match="missing.mp4"):
            engine._media(missing)
    finally:
        engine._media_pool.close()
