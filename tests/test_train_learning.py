"""The tiny recipe learns the synthetic set through the media, and only through the media."""

import pytest

from emoreason.demo import train_tiny
from emoreason.model.loading import load_model
from emoreason.schema import load_samples
from emoreason.train.heldout import heldout_accuracy


@pytest.mark.slow
def test_learns_emotion_through_media_and_not_from_text(tiny_data, tmp_path):
    train_samples = load_samples(tiny_data.train)
    heldout_samples = load_samples(tiny_data.heldout)
    # Honesty of the recipe: the text is identical across classes, and train/held-out clips differ.
    assert len({s.subtitle for s in train_samples + heldout_samples}) == 1
    assert not {s.id for s in train_samples} & {s.id for s in heldout_samples}
    assert {s.targets.emotion for s in heldout_samples} == set(tiny_data.labels)

    final = train_tiny(tiny_data, tmp_path / "train", ["optim.resume=false"])
    model, processor = load_model(final)
    chance = 1 / len(tiny_data.labels)

    with_media = heldout_accuracy(model, processor, tiny_data.heldout, tiny_data.labels)
    assert with_media.total == len(heldout_samples) >= 40
    assert with_media.accuracy >= 0.9, with_media.predictions

    # Same model, same prompts, media removed: it can only guess (unmatched answers count as wrong).
    without = heldout_accuracy(model, processor, tiny_data.heldout, tiny_data.labels, with_media=False)
    assert without.accuracy <= chance + 0.2, without.predictions
