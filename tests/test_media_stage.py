"""Serving's media stage: batched encoders equal one request at a time, concurrent requests get their own
features and answers, and a dying decode worker is retried, then reported, never a hang."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from emoreason.encoders.config import EncoderConfig
from emoreason.features.featurizer import Featurizer
from emoreason.features.media_config import FaceCropConfig, MediaConfig
from emoreason.serving.media_stage import MediaStage, MediaStageConfig, MediaStageError


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory, media_dir) -> list[dict[str, Path]]:
    """Synthetic face clips (160 px, 2 s) and media of other shapes: 128x96 frames, no audio, a still image."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("stage_clips")
    samples = generate_dataset(root, SyntheticConfig(num_per_class=1, seed=3))
    files = [{"video": root / s.media.video} for s in samples]
    files += [{"video": media_dir / "h264_aac.mp4"}, {"video": media_dir / "no_audio.mp4"},
              {"image": media_dir / "still.png", "audio": media_dir / "stereo_44k.wav"}]
    return files


@pytest.fixture(scope="module")
def featurizer(tmp_path_factory) -> Featurizer:
    from emoreason.encoders.tiny import build_tiny_encoders

    dirs = build_tiny_encoders(tmp_path_factory.mktemp("stage_encoders"))
    encoders = {m: EncoderConfig(model=str(p), pooling="mean" if m != "face" else "none") for m, p in dirs.items()}
    featurizer = Featurizer(encoders, MediaConfig(faces=FaceCropConfig(size=64)))
    featurizer.load_all()
    return featurizer


@pytest.fixture(scope="module")
def alone(featurizer, clip_files):
    return [featurizer.featurize(files) for files in clip_files]


@pytest.fixture
def encode_batch_sizes(featurizer, monkeypatch) -> list[int]:
    """The number of samples of every `featurizer.encode_many` call the test makes."""
    sizes: list[int] = []
    encode_many = featurizer.encode_many

    def recording(batch, modalities=None):
        sizes.append(len(batch))
        return encode_many(batch, modalities)

    monkeypatch.setattr(featurizer, "encode_many", recording)
    return sizes


def assert_same(result, expected) -> None:
    assert result.absent == expected.absent and result.faces == expected.faces
    assert set(result.features) == set(expected.features)
    for m, tensor in expected.features.items():
        assert torch.equal(result.features[m], tensor), m


def test_encode_many_equals_each_samples_own_encode(featurizer, clip_files, alone):
    batch = [featurizer.decode(files) for files in clip_files]
    for result, expected in zip(featurizer.encode_many(batch), alone, strict=True):
        assert_same(result, expected)
    assert all(not d.pending for d in batch)


def test_concurrent_requests_get_the_featurizers_own_features(featurizer, clip_files, alone, encode_batch_sizes):
    sizes = encode_batch_sizes
    stage = MediaStage(featurizer, MediaStageConfig(workers=2, batch_window_ms=200))
    try:
        with ThreadPoolExecutor(len(clip_files)) as pool:
            results = list(pool.map(stage.featurize, clip_files))
    finally:
        stage.close()
    for result, expected in zip(results, alone, strict=True):
        assert_same(result, expected)
    assert max(sizes) > 1, f"no two requests shared an encoder call (batch sizes {sizes})"


def test_a_dying_worker_is_replaced_and_retried_then_reported(featurizer, clip_files, alone, tmp_path):
    media = dataclasses.replace(featurizer.media, faces=dataclasses.replace(
        featurizer.media.faces, detector="dying_detector:DyingDetector", detector_args={"markers": str(tmp_path)}))
    dying = Featurizer(featurizer.encoders, media)
    stage = MediaStage(dying, MediaStageConfig(workers=1, pool="process", retries=1))
    try:
        (tmp_path / "die-0").touch()  # the first attempt dies, the retry on a fresh pool succeeds
        assert_same(stage.featurize(clip_files[0]), alone[0])
        assert not (tmp_path / "die-0").exists()
        stage.config = dataclasses.replace(stage.config, retries=0)
        (tmp_path / "die-1").touch()  # no retry left: an error naming the clip, promptly
        start = time.monotonic()
        with pytest.raises(MediaStageError, match=rf"died decoding .*{clip_files[1]['video'].name}.*1 attempt"):
            stage.featurize(clip_files[1])
        assert time.monotonic() - start < 120
    finally:
        stage.close()


def test_stage_settings_are_checked_by_key():
    from emoreason.config import ConfigError

    for fields, key in (({"workers": -1}, "workers"), ({"pool": "fork"}, "pool"), ({"batch_window_ms": -1}, "batch_window_ms"),
                        ({"memo_mb": -1}, "memo_mb")):
        with pytest.raises(ConfigError, match=f"key 'media_stage.{key}'"):
            MediaStageConfig(**fields)


QUESTION = "Which emotion does the person express? Answer with one label from: angry, happy, sad, surprised."


def answers_alone_and_concurrently(engine, clips: list[Path]) -> tuple[list[str], list[str]]:
    from emoreason.serving.engine import GenerationRequest, MediaInput

    requests = [GenerationRequest(messages=[{"role": "user", "content": QUESTION}], media=[MediaInput("video", c)],
                                  max_tokens=8) for c in clips]
    alone = [engine.generate([r])[0].text for r in requests]
    barrier = threading.Barrier(len(requests))

    def at_once(request):
        barrier.wait()  # every request in flight together, as on a busy server
        return engine.generate([request])[0].text

    with ThreadPoolExecutor(len(requests)) as pool:
        return alone, list(pool.map(at_once, requests))


@pytest.fixture(scope="module")
def served_clips(tiny_data) -> list[Path]:
    from serving_models import clips_dir

    return sorted(clips_dir(tiny_data).glob("*.mp4"))[:8]


def test_hf_engine_answers_each_concurrent_request_as_alone(tiny_data, tmp_path_factory, served_clips):
    from serving_models import exported_model_dir

    from emoreason.serving.hf_engine import HFEngine

    engine = HFEngine(exported_model_dir(tiny_data, tmp_path_factory), max_batch_size=8)  # the default stage: 2 threads
    assert engine.media_stage is not None
    alone, together = answers_alone_and_concurrently(engine, served_clips)
    assert together == alone
    # The stage's features are the engine's own Featurizer's, request by request.
    for clip in served_clips[:3]:
        expected = engine.featurizer.featurize({"video": clip})
        assert_same(engine.media_stage.featurize({"video": clip}), expected)
    engine.close_media_stage()


def test_vllm_engine_answers_each_concurrent_request_as_alone(vllm_engine, served_clips):
    assert vllm_engine.media_stage is not None
    alone, together = answers_alone_and_concurrently(vllm_engine, served_clips)
    assert together == alone


def test_resent_and_concurrent_same_content_share_one_computation(featurizer, clip_files, alone, encode_batch_sizes, tmp_path):
    """A chat resends its clip every turn (under a new temp name for a data URL): same bytes, same features, no
    second decode or encode; a memo of 0 MiB keeps nothing, but requests in flight together still share."""
    import shutil

    items = encode_batch_sizes
    copies = [{"video": shutil.copy(clip_files[0]["video"], tmp_path / f"copy{i}.mp4")} for i in range(4)]
    stage = MediaStage(featurizer, MediaStageConfig(workers=2))
    try:
        assert_same(stage.featurize(clip_files[0]), alone[0])
        for files in copies:
            assert_same(stage.featurize(files), alone[0])
        assert sum(items) == 1, items
    finally:
        stage.close()
    items.clear()
    stage = MediaStage(featurizer, MediaStageConfig(workers=2, memo_mb=0))
    try:
        assert_same(stage.featurize(copies[0]), alone[0])
        barrier = threading.Barrier(len(copies))

        def at_once(files):
            barrier.wait()
            return stage.featurize(files)

        with ThreadPoolExecutor(len(copies)) as pool:
            for result in pool.map(at_once, copies):
                assert_same(result, alone[0])
        assert 1 + 1 <= sum(items) < 1 + len(copies), items  # nothing remembered; the concurrent ones shared
    finally:
        stage.close()
