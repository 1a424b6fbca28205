"""A landmark-only model learns the synthetic expression class from the drawn face's landmarks, and only from them.

The synthetic generator writes the 68 landmarks of the face it drew into each sample (its mouth and brows move
with the class; the subtitle is the same for every class). Prep runs only the built-in landmark encoder over
those annotations, and a projector feeds its one token per clip to the tiny LLM: held-out accuracy is well
above chance, and falls to chance when the held-out clips' landmarks are shuffled across samples.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

STEPS = 60  # held-out accuracy 1.0 at 60 steps, 0.475 at 30 (lr 0.01, batch 8, on 120 training clips)


@pytest.fixture(scope="module")
def landmark_data(tiny_data, tmp_path_factory):
    """The tiny workspace's clips, prepped with the landmark encoder alone; recognition conversations split
    train / held-out as the demo splits them."""
    from emoreason.data_prep.instructions import build_conversations
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep
    from emoreason.demo import split_heldout
    from emoreason.encoders.config import EncoderConfig
    from emoreason.features.media_config import MediaConfig
    from emoreason.media.video import FrameSampling
    from emoreason.schema import load_samples, write_samples

    raw = Path(tiny_data.train).parents[1] / "data" / "samples.jsonl"  # prepare_tiny_data's synthetic samples
    out = tmp_path_factory.mktemp("landmark_prep")
    run_prep(PrepConfig(input=str(raw), output_dir=str(out), progress=False, media=MediaConfig(video=FrameSampling(num_frames=8)),
                        encoders={"landmarks": EncoderConfig(model="landmarks:annotation", pooling="mean")}))
    prepped = load_samples(out / "samples.jsonl")
    conversations = build_conversations(prepped, "recognition", modalities=["landmarks"], labels=tiny_data.labels)
    order = {s.id: i for i, s in enumerate(load_samples(raw))}
    conversations.sort(key=lambda s: order[s.id])
    train, heldout = split_heldout(conversations, len(tiny_data.labels))
    write_samples(out / "train.jsonl", train)
    write_samples(out / "heldout.jsonl", heldout)
    return out


@pytest.mark.slow
def test_landmark_only_model_learns_the_expression(landmark_data, tiny_data, tmp_path):
    from emoreason.model.features import cached_features
    from emoreason.model.loading import load_model
    from emoreason.schema import load_samples
    from emoreason.train.config import load_train_config
    from emoreason.train.heldout import heldout_accuracy, score_samples
    from emoreason.train.run import setup, train

    recipe = {
        "stage": "instruct",
        "model": {"llm": tiny_data.llm, "projectors": {"landmarks": {"kind": "mlp"}},
                  "lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "max_length": 256},
        "data": {"train": str(landmark_data / "train.jsonl")},
        "optim": {"output_dir": str(tmp_path / "run"), "max_steps": STEPS, "batch_size": 8, "learning_rate": 0.01,
                  "warmup_ratio": 0.05, "save_steps": 1000, "logging_steps": 20, "use_cpu": True},
    }
    (tmp_path / "landmarks_only.yaml").write_text(yaml.safe_dump(recipe))
    cfg = load_train_config(str(tmp_path / "landmarks_only.yaml"))
    assert cfg.model.modalities == ["landmarks"] and cfg.model.encoders["landmarks"].model == "landmarks:annotation"
    model, processor = load_model(train(setup(cfg)))

    heldout_path = landmark_data / "heldout.jsonl"
    heldout = load_samples(heldout_path)
    chance = 1 / len(tiny_data.labels)
    learned = heldout_accuracy(model, processor, heldout_path, tiny_data.labels)
    assert learned.total == len(heldout) >= 40
    assert learned.accuracy >= 0.75, learned.predictions

    # The same model and prompts, each clip given another clip's landmarks: it answers the other clip's class.
    order = list(range(len(heldout)))
    random.Random(0).shuffle(order)
    partner = {s.id: heldout[j] for s, j in zip(heldout, order)}
    shuffled = score_samples(model, processor, heldout, lambda s: cached_features(partner[s.id], landmark_data, ["landmarks"]),
                             tiny_data.labels)
    assert shuffled.accuracy <= chance + 0.2, shuffled.predictions
    follows = sum(label == partner[i].targets.emotion for i, _, label in shuffled.predictions) / len(heldout)
    assert follows >= 0.75, shuffled.predictions
