"""Featurizer.decode and Featurizer.encode: featurize is the two in a row, also across a pickle and one encoder at a time."""

import pickle

import torch

from emoreason.encoders.config import EncoderConfig
from emoreason.features.featurizer import Featurizer
from emoreason.features.media_config import MediaConfig


def test_decode_then_encode_per_forward_group_equals_featurize(tmp_path, media_dir):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.tiny import build_tiny_encoders

    samples = generate_dataset(tmp_path / "data", SyntheticConfig(num_per_class=1, seed=5))
    encoders = {m: EncoderConfig(model=str(p), pooling="mean") for m, p in build_tiny_encoders(tmp_path / "enc").items()}
    featurizer = Featurizer(encoders, MediaConfig())
    for files in ({"video": tmp_path / "data" / samples[0].media.video}, {"video": media_dir / "no_audio.mp4"}):
        whole = featurizer.featurize(files)
        decoded = featurizer.decode(files)
        assert not decoded.result.features and decoded.pending, "decode must leave the encoders to encode"
        for group in featurizer.forward_groups():  # as the Ray engine runs them: one process per encoder
            decoded = pickle.loads(pickle.dumps(decoded))
            featurizer.encode(decoded, group)
        assert not decoded.pending
        split = decoded.result
        assert set(split.features) == set(whole.features) and split.absent == whole.absent
        assert split.faces == whole.faces and split.frames_decoded == whole.frames_decoded
        for m, tensor in whole.features.items():
            assert torch.equal(split.features[m], tensor), m
        if "video" in files and files["video"].name == "no_audio.mp4":
            assert "audio" in split.absent and split.absent["audio"].reason == "no_audio"
