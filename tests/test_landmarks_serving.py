"""Annotated landmarks reach a served model as they reach prep: through the engines (with and without the media
stage), `emoreason infer`'s requests and the OpenAI server's `landmarks` field; the web inspector says when a model
reads annotations that uploaded media cannot carry."""

from __future__ import annotations

import json

import openai
import pytest
import torch
from serving_helpers import running_server

from emoreason.serving.engine import GenerationRequest, MediaInput

QUESTION = "Which emotion does the person express?"


@pytest.fixture(scope="module")
def landmark_model(tiny_llm_dir, tmp_path_factory):
    """A model whose one modality is the landmark encoder reading the annotation, and a synthetic clip with one."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.config import EncoderConfig
    from emoreason.model.config import ModelConfig
    from emoreason.model.loading import build_model, save_model
    from emoreason.model.projectors import ProjectorConfig

    root = tmp_path_factory.mktemp("landmark_serving")
    [sample] = generate_dataset(root / "data", SyntheticConfig(num_per_class=1, classes=["happy"], seconds=1.0))
    assert sample.landmarks is not None
    config = ModelConfig(llm=tiny_llm_dir, encoders={"landmarks": EncoderConfig(model="landmarks:annotation", pooling="none")},
                         projectors={"landmarks": ProjectorConfig(kind="mlp")})
    model, processor = build_model(config, seed=0)
    return save_model(model, processor, root / "model"), sample, root / "data"


def _request(sample, data_root, landmarks=True) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", data_root / sample.media.video)],
                             max_tokens=2, landmarks=sample.landmarks if landmarks else None)


@pytest.mark.parametrize("workers", [2, 0], ids=["media_stage", "serial"])
def test_engines_featurize_the_requests_annotated_landmarks_as_prep_does(landmark_model, workers):
    from emoreason.features.featurizer import Featurizer
    from emoreason.serving.hf_engine import HFEngine
    from emoreason.serving.media_stage import MediaStageConfig

    model_dir, sample, data_root = landmark_model
    engine = HFEngine(model_dir, media_stage=MediaStageConfig(workers=workers))
    try:
        prepared = engine.prepare(_request(sample, data_root))
        prep = Featurizer(engine.featurizer.encoders, engine.featurizer.media).featurize(
            {"video": data_root / sample.media.video}, ["landmarks"], landmarks=sample.landmarks)
        assert prepared.absent == {} and torch.equal(prepared.features["landmarks"], prep.features["landmarks"])
        without = engine.prepare(_request(sample, data_root, landmarks=False))
        assert without.absent == {"landmarks": "no_landmarks"}
        # Annotated landmarks need no media file.
        text_only = engine.prepare(GenerationRequest([{"role": "user", "content": QUESTION}], landmarks=sample.landmarks))
        assert torch.equal(text_only.features["landmarks"], prep.features["landmarks"])
    finally:
        engine.close_media_stage()


def test_infer_sends_each_samples_landmarks(landmark_model, tmp_path):
    from emoreason.serving.infer import main

    model_dir, sample, data_root = landmark_model
    samples = data_root / "samples.jsonl"
    samples.write_text(sample.model_dump_json(exclude_none=True) + "\n")
    out = tmp_path / "predictions.jsonl"
    assert main(["--model", str(model_dir), "--input", str(samples), "--out", str(out), "--max-tokens", "2",
                 "--labels", "happy,sad"]) == 0
    [line] = [json.loads(x) for x in out.read_text().splitlines()]
    assert "error" not in line and "absent" not in line, line


def test_server_takes_landmarks_in_the_request_body(landmark_model):
    from emoreason.serving.hf_engine import HFEngine
    from emoreason.serving.server import ServerSettings, create_app

    model_dir, sample, data_root = landmark_model
    engine = HFEngine(model_dir)
    media_root = data_root
    video = {"type": "video_url", "video_url": {"url": sample.media.video}}
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, video]}]
    try:
        with running_server(create_app(engine, ServerSettings(media_root=media_root))) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
            annotated = client.chat.completions.create(model=engine.model_name, messages=messages, max_tokens=2,
                                                       extra_body={"landmarks": sample.landmarks.model_dump()})
            plain = client.chat.completions.create(model=engine.model_name, messages=messages, max_tokens=2)
            with_points, without = engine.prepare(_request(sample, data_root)), engine.prepare(_request(sample, data_root, False))
            assert "landmarks" in with_points.features and "landmarks" in without.absent
            # The prompts the engine builds with and without the annotation (one landmark position per frame).
            assert annotated.usage.prompt_tokens == len(with_points.encoded.input_ids)
            assert plain.usage.prompt_tokens == len(without.encoded.input_ids)
            assert annotated.usage.prompt_tokens >= plain.usage.prompt_tokens + with_points.features["landmarks"].shape[0]
            with pytest.raises(openai.BadRequestError, match="landmarks"):
                client.chat.completions.create(model=engine.model_name, messages=messages, max_tokens=2,
                                               extra_body={"landmarks": {"points": [[[0.0, 0.0]] * 3]}})
    finally:
        engine.close_media_stage()


def test_inspector_says_uploads_carry_no_annotated_landmarks(landmark_model):
    from emoreason.web.inspection import ANNOTATED_LANDMARKS_NOTE, Inspector, ModelMedia

    model_dir, sample, data_root = landmark_model
    inspector = Inspector(ModelMedia.of_model_dir(model_dir))
    files = {"video": data_root / sample.media.video}
    upload = inspector.inspect(files)
    assert ANNOTATED_LANDMARKS_NOTE in upload.notes
    assert [(r.modality, r.status, r.reason) for r in upload.modalities] == [("landmarks", "absent", "no_landmarks")]
    annotated = inspector.inspect(files, landmarks=sample.landmarks)
    assert ANNOTATED_LANDMARKS_NOTE not in annotated.notes and annotated.modalities[0].status == "present"
