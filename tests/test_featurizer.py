"""One path from media to model inputs: the Featurizer in prep, training and serving, and the prep -> train contract."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from emoreason.atomic import replace_dir
from emoreason.config import ConfigError
from emoreason.constants import MEDIA_INDEX, MODALITIES, MODALITY_TABLE, PLACEHOLDER_TOKENS
from emoreason.features.contract import CONTRACT_FILE, read_contract
from emoreason.features.featurizer import Featurizer
from emoreason.media.errors import MediaError
from emoreason.model.features import cached_features
from emoreason.schema import Modality, load_samples
from emoreason.train.config import load_train_config

TRAIN_CONFIG = "configs/train/tiny_instruct.yaml"
# The modalities the tiny recipe preps (configs/prep/demo.yaml); the table has more.
PREPPED = ("audio", "face", "video", "frame")


def clip_root(tiny_data) -> Path:
    return tiny_data.train.parent.parent / "data"


def test_modality_table_is_the_one_source():
    assert MODALITIES == tuple(spec.name for spec in MODALITY_TABLE)
    assert set(Modality.__args__) == set(MODALITIES)
    assert set(PLACEHOLDER_TOKENS) == set(MODALITIES)
    assert {m: MEDIA_INDEX[m] for m in MODALITIES} == {spec.name: spec.media_index for spec in MODALITY_TABLE}
    assert len(set(MEDIA_INDEX.values())) == len(MEDIA_INDEX)  # fusion has its own tag


def test_served_features_equal_prep_cache_bit_for_bit(tiny_data, tmp_path_factory):
    """The hf engine's request path and prep's cached features agree for every modality of a clip."""
    from serving_models import trained_model_dir

    from emoreason.serving.engine import GenerationRequest, MediaInput
    from emoreason.serving.hf_engine import HFEngine

    engine = HFEngine(trained_model_dir(tiny_data, tmp_path_factory))
    for sample in load_samples(tiny_data.heldout)[:2]:
        request = GenerationRequest(
            [{"role": "user", "content": "Which emotion?"}],
            [MediaInput("video", clip_root(tiny_data) / sample.media.video)],
            max_tokens=1,
        )
        prepared = engine.prepare(request)
        cached = cached_features(sample, tiny_data.heldout.parent, list(PREPPED))
        assert set(prepared.features) == set(cached) == set(PREPPED), prepared.absent
        for m in PREPPED:
            assert prepared.features[m].dtype == cached[m].dtype == torch.float16
            assert torch.equal(prepared.features[m], cached[m]), m


def test_absences_and_faults_come_back_in_one_shape(tiny_data, tmp_path):
    cfg = load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path))
    featurizer = Featurizer(cfg.model.encoders, cfg.model.media)
    still = tmp_path / "still.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 90, 60)).save(still)
    result = featurizer.featurize({"image": still})
    assert set(result.features) == {"frame"} or set(result.features) == {"frame", "face"}
    assert result.absent["video"].reason == "no_video" and not result.absent["video"].fault
    assert "still image" in result.absent["video"].message
    assert result.absent["audio"].reason == "no_audio" and not result.absent["audio"].fault
    result.raise_for_fault()  # absences alone are not faults

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    broken = featurizer.featurize({"video": empty})
    assert not broken.features
    assert {a.reason for a in broken.absent.values()} == {"empty"} and all(a.fault for a in broken.absent.values())
    with pytest.raises(MediaError) as info:
        broken.raise_for_fault()
    assert "empty.mp4" in str(info.value)


def test_prep_writes_the_contract(tiny_data):
    contract = read_contract(tiny_data.train)
    assert contract is not None and contract.path.name == CONTRACT_FILE
    assert set(contract.settings.encoders) == set(PREPPED)
    assert contract.settings.media.video.num_frames == 8
    assert all(Path(e.model).is_absolute() for e in contract.settings.encoders.values())


def test_training_without_encoders_takes_them_from_prep(tiny_data, tmp_path):
    cfg = load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path))
    contract = read_contract(tiny_data.train)
    for m in PREPPED:
        assert cfg.model.encoders[m].model == contract.settings.encoders[m].model
        assert cfg.model.encoders[m].pooling == contract.settings.encoders[m].pooling
    assert cfg.model.media == contract.settings.media


def test_training_with_only_an_llm_takes_the_rest_from_prep(tiny_data, tmp_path):
    overrides = [f"model={{llm: {tiny_data.llm}}}", f"data.train={tiny_data.train}", f"optim.output_dir={tmp_path}"]
    cfg = load_train_config(TRAIN_CONFIG, ["model.projectors=null", *overrides])
    assert cfg.model.modalities == list(PREPPED)
    assert {p.kind for p in cfg.model.projectors.values()} == {"mlp"}


@pytest.mark.parametrize(
    "override, key, ours, theirs",
    [
        ("model.media.video.num_frames=4", "model.media.video.num_frames", "4", "8"),
        ("model.encoders.audio.pooling=mean", "model.encoders.audio.pooling", "'mean'", "'tokens:4'"),
        ("model.media.faces.size=96", "model.media.faces.size", "96", "64"),
    ],
)
def test_training_config_disagreeing_with_prep_is_refused_by_key(tiny_data, tmp_path, override, key, ours, theirs):
    with pytest.raises(ConfigError) as info:
        load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path) + [override])
    message = str(info.value)
    assert f"key '{key}'" in message and ours in message and theirs in message, message
    assert "command line override" in message and CONTRACT_FILE in message


def test_training_with_another_encoder_checkpoint_is_refused(tiny_data, tmp_path):
    other = tiny_data.encoders["face"]  # a real checkpoint, but not the one prep ran for audio
    with pytest.raises(ConfigError) as info:
        load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path) + [f"model.encoders.audio.model={other}"])
    assert "key 'model.encoders.audio.model'" in str(info.value)


def test_feature_refs_of_another_encoder_are_refused_before_any_step(tiny_data, tmp_path):
    """Without a contract (a samples file written elsewhere), the FeatureRef's encoder is still checked."""
    from emoreason.train.dataset import WrongEncoderError
    from emoreason.train.run import setup

    samples = [json.loads(line) for line in tiny_data.train.read_text().splitlines()]
    for record in samples:
        record["features"]["audio"]["encoder"] = str(tiny_data.encoders["face"])
    moved = tiny_data.train.parent / "moved" / "train.jsonl"  # no featurizer.json beside it
    moved.parent.mkdir(exist_ok=True)
    for record in samples:
        for ref in record["features"].values():
            ref["path"] = "../" + ref["path"]
    moved.write_text("".join(json.dumps(r) + "\n" for r in samples))
    overrides = [f"model.llm={tiny_data.llm}", f"data.train={moved}", f"optim.output_dir={tmp_path}"]
    overrides += [f"model.encoders.{m}.model={p}" for m, p in tiny_data.encoders.items()]
    cfg = load_train_config(TRAIN_CONFIG, overrides)
    with pytest.raises(WrongEncoderError) as info:
        setup(cfg)
    assert "audio features were made by encoder" in str(info.value) and "model.encoders.audio.model" in str(info.value)


def test_init_from_alone_works_and_a_disagreeing_key_is_refused(tiny_data, tmp_path_factory, tmp_path):
    from serving_models import trained_model_dir

    model_dir = trained_model_dir(tiny_data, tmp_path_factory)
    alone = ["stage=instruct", f"init_from={model_dir}", f"data.train={tiny_data.train}", f"optim.output_dir={tmp_path}"]
    cfg = load_train_config(None, alone + ["optim.max_steps=1"])
    assert cfg.model.projectors["face"].kind == "attn_pool"  # the loaded model's, not a default
    with pytest.raises(ConfigError) as info:
        load_train_config(None, alone + ["model.lora.r=4"])
    assert "key 'model.lora.r'" in str(info.value) and "init_from" in str(info.value) and "8" in str(info.value)
    # The recipe's own model block agrees with the model it trained, so it may stay beside init_from.
    load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path) + [f"init_from={model_dir}"])


def test_directory_replace_never_leaves_a_moment_without_the_directory(tmp_path):
    target = tmp_path / "model"
    with replace_dir(target) as staging:
        (staging / "weights").write_text("0")
    stop = threading.Event()
    missing = []

    def poll() -> None:
        while not stop.is_set():
            if not (target / "weights").exists():
                missing.append(1)

    reader = threading.Thread(target=poll)
    reader.start()
    for i in range(200):
        with replace_dir(target) as staging:
            (staging / "weights").write_text(str(i))
    stop.set()
    reader.join()
    assert not missing
    assert (target / "weights").read_text() == "199"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folders left behind
