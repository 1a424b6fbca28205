"""The web app's "what the model saw" inspector on a native model directory, without a browser or its weights' forward:
the frames its own FrameSampling picks, the processor's tensors and LLM positions per modality, and a clear note where
the model takes no face crops."""

from __future__ import annotations

import types

import pytest

from native_twins import twin_dir, write_test_clip


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    from emoreason.media.video import FrameSampling
    from emoreason.native.config import ComponentTraining, NativeModelConfig
    from emoreason.native.model import NativeModel, build_processor

    cfg = NativeModelConfig(base=twin_dir(tmp_path_factory, "qwen2_5_vl"), components={"llm": ComponentTraining("lora")},
                            modalities=["video"], frames=FrameSampling(num_frames=4))
    out = tmp_path_factory.mktemp("native_web") / "model"
    NativeModel.build(cfg).save_pretrained(out, build_processor(cfg))
    return out


def test_native_model_dir_shows_sampled_frames_processor_inputs_and_no_faces(native_dir, tmp_path):
    from emoreason.web.inspection import Inspector, ModelMedia, NativeModelMedia

    media = ModelMedia.of_model_dir(native_dir)
    assert isinstance(media, NativeModelMedia) and media.modalities == ["video"]
    from emoreason.media.video import FrameSampling, decode_frames

    clip = write_test_clip(tmp_path / "clip.mp4")
    report = Inspector(media).inspect({"video": clip})
    sampled = decode_frames(clip, FrameSampling(num_frames=4)).times  # the model's sampling, as its engine decodes
    assert [caption for _, caption in report.frames] == [f"t={t:.2f}s" for t in sampled]
    assert report.crops == [] and any("no face crops" in note for note in report.notes)
    (row,) = report.modalities
    # 4 frames of 96x128 -> 84x140 pixels: 2 time pairs x 6 x 10 patches of 3*2*14*14 values, 2x2 merged: 30 positions.
    assert (row.modality, row.status) == ("video", "present")
    assert row.shape == "pixel_values_videos [120, 1176]; 30 LLM positions"
    assert report.waveform is not None  # the clip's track is drawn even though this model takes no audio


def test_native_engine_says_how_it_turns_media_into_inputs(native_dir):
    from emoreason.native.featurizer import NativeFeaturizer
    from emoreason.native.processor import NativeProcessor
    from emoreason.web.inspection import ModelMedia, NativeModelMedia

    featurizer = NativeFeaturizer(NativeProcessor.from_pretrained(native_dir, model_type="qwen2_5_vl"))
    media = ModelMedia.of_engine(types.SimpleNamespace(featurizer=featurizer, modalities=["video"]))
    assert isinstance(media, NativeModelMedia) and media.featurizer is featurizer and media.faces is None
