"""NativeFeaturizer: a sample's media -> a native backbone's inputs, with the projector Featurizer's absences."""

from __future__ import annotations

import pytest
import torch

from emoreason.constants import IGNORE_INDEX
from emoreason.media.video import FrameSampling
from emoreason.native.conversation import NativeConversation, collate
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.processor import NativeProcessor
from native_twins import twin_dir, write_test_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_clip(tmp_path_factory.mktemp("native_clip") / "clip.mp4")


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    return NativeFeaturizer(NativeProcessor.from_pretrained(twin_dir(tmp_path_factory, "qwen2_5_omni_thinker")), FrameSampling(num_frames=4))


def test_omni_takes_video_and_the_clips_audio(omni, clip):
    out = omni.featurize({"video": clip})
    assert out.absent == {} and set(out.inputs) == {"video", "audio"}
    assert out.frames_decoded == 4
    video, audio = out.inputs["video"], out.inputs["audio"]
    assert video.tensors["video_grid_thw"].tolist() == [[2, 6, 10]] and video.num_tokens == 30
    # 2 s of 16 kHz audio (plus the AAC codec's few padding ms): ~200 mel frames at a 10 ms hop, halved
    # twice by the audio tower (conv stride 2, then pooling by 2).
    frames = int(audio.tensors["feature_attention_mask"].sum())
    assert 200 <= frames <= 210
    assert audio.num_tokens == ((frames - 1) // 2 + 1 - 2) // 2 + 1
    assert audio.text.startswith("<|audio_bos|>") and audio.text.count("<|AUDIO|>") == audio.num_tokens


def test_absences_are_the_featurizers(omni, media_dir):
    out = omni.featurize({"video": media_dir / "no_audio.mp4"})
    assert set(out.inputs) == {"video"}
    assert out.absent["audio"].reason == "no_audio" and not out.absent["audio"].fault
    broken = omni.featurize({"video": media_dir / "not_media.mp4"})
    assert broken.inputs == {} and all(a.fault for a in broken.absent.values())
    with pytest.raises(Exception, match="not"):
        broken.raise_for_fault()
    missing = omni.featurize({"video": media_dir / "nope.mp4"})
    assert missing.absent["video"].reason == "missing_file" and missing.absent["video"].fault


def test_still_image_is_the_visual_input(tmp_path_factory, media_dir):
    processor = NativeProcessor.from_pretrained(twin_dir(tmp_path_factory, "qwen2_5_vl"))
    out = NativeFeaturizer(processor).featurize({"image": media_dir / "still.png"})
    assert set(out.inputs) == {"image"} and out.absent["video"].reason == "no_video"
    encoded = NativeConversation(processor).encode([{"role": "user", "content": "<video> Which emotion?"}], out.inputs, generation_prompt=True)
    assert encoded.input_ids.count(processor.pad_token_ids["image"]) == out.inputs["image"].num_tokens


def test_labels_only_on_the_answer_and_placeholders_resolved(omni, clip):
    out = omni.featurize({"video": clip})
    conversation = NativeConversation(omni.processor)
    turns = [{"role": "user", "content": "<video> <face> What emotion?"}, {"role": "assistant", "content": "happy"}]
    encoded = conversation.encode(turns, out.inputs)
    tok = omni.processor.tokenizer
    answer = [t for t, lab in zip(encoded.input_ids, encoded.labels) if lab != IGNORE_INDEX]
    assert tok.decode(answer) == "happy<|im_end|>\n"
    text = tok.decode(encoded.input_ids)
    assert text.count("<|vision_bos|>") == 1 and "<face>" not in text and "<video>" not in text
    assert [m.modality for m in encoded.media] == ["audio", "video"]  # unplaced audio goes first
    batch = collate(omni.processor, [encoded, conversation.encode(turns[:1], {"video": out.inputs["video"]}, generation_prompt=True)])
    assert batch["input_features"].shape[0] == 1 and batch["video_grid_thw"].shape[0] == 2
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()


def test_placeholder_count_mismatch_names_the_modality(omni, clip):
    import dataclasses

    item = omni.featurize({"video": clip}).inputs["video"]
    wrong = dataclasses.replace(item, num_tokens=item.num_tokens + 1)
    with pytest.raises(ValueError, match=r"video: 30 placeholder tokens in the prompt but the media fill 31"):
        NativeConversation(omni.processor).encode([{"role": "user", "content": "<video>"}], {"video": wrong}, generation_prompt=True)


def test_audio_on_a_backbone_without_an_audio_tower(tmp_path_factory):
    processor = NativeProcessor.from_pretrained(twin_dir(tmp_path_factory, "internvl"))
    with pytest.raises(ValueError, match="no audio tower"):
        processor.audio_inputs(torch.zeros(16000).numpy())


def test_cached_inputs_equal_live_ones(omni, clip, tmp_path):
    from emoreason.native.cache import NativeInputCache

    live = omni.featurize({"video": clip})
    cached = NativeFeaturizer(omni.processor, omni.frames, cache=NativeInputCache(tmp_path / "cache"))
    first = cached.featurize({"video": clip})  # fills the cache
    files = sorted((tmp_path / "cache").rglob("*.safetensors"))
    assert [f.parts[-3] for f in files] == sorted(["audio", "video"])
    second = cached.featurize({"video": clip})
    assert second.frames_decoded == 0 and second.frame_times == live.frame_times  # read, not decoded
    for result in (first, second):
        for modality, item in live.inputs.items():
            got = result.inputs[modality]
            assert (got.text, got.num_tokens) == (item.text, item.num_tokens)
            assert got.tensors.keys() == item.tensors.keys()
            for name, tensor in item.tensors.items():
                assert torch.equal(got.tensors[name], tensor), (modality, name)
    # A different frame sampling is a different key: the video is recomputed, the audio reused.
    other = NativeFeaturizer(omni.processor, FrameSampling(num_frames=6), cache=NativeInputCache(tmp_path / "cache"))
    assert other.featurize({"video": clip}).inputs["video"].tensors["video_grid_thw"][0, 0] == 3
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 3
    files[0].write_bytes(b"not safetensors")  # a damaged entry is recomputed, not fatal
    assert set(cached.featurize({"video": clip}).inputs) == {"audio", "video"}


def test_encode_sample_from_the_schema(omni, clip):
    from emoreason.native.samples import encode_sample
    from emoreason.schema import Sample

    sample = Sample.model_validate({"id": "s1", "media": {"video": clip.name}, "conversations": [
        {"role": "user", "content": "<audio> <video> Which emotion?"}, {"role": "assistant", "content": "sad"}]})
    conversation = NativeConversation(omni.processor)
    encoded, media = encode_sample(sample, clip.parent, omni, conversation)
    assert set(media.inputs) == {"audio", "video"} and IGNORE_INDEX not in encoded.labels[-3:]
    prompt, _ = encode_sample(sample, clip.parent, omni, conversation, generation_prompt=True)
    assert all(label == IGNORE_INDEX for label in prompt.labels)
    assert omni.processor.tokenizer.decode(prompt.input_ids).endswith("<|im_start|>assistant\n")
    broken = Sample.model_validate({"id": "s2", "media": {"video": "missing.mp4"}, "conversations": sample.conversations})
    with pytest.raises(Exception, match="missing"):
        encode_sample(broken, clip.parent, omni, conversation)


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "internvl"])
def test_face_crops_go_in_as_extra_images(kind, tmp_path_factory, clip):
    import transformers as tf

    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.features.media_config import FaceCropConfig

    root = tmp_path_factory.mktemp(f"faces_{kind}")
    face_clip = root / generate_dataset(root, SyntheticConfig(num_per_class=1, classes=["happy"]))[0].media.video
    base = twin_dir(tmp_path_factory, kind)
    processor = NativeProcessor.from_pretrained(base)
    featurizer = NativeFeaturizer(processor, FrameSampling(num_frames=4), faces=FaceCropConfig(size=56))
    out = featurizer.featurize({"video": face_clip})
    assert set(out.inputs) == {"video", "face"} and out.frames_decoded == 4
    face = out.inputs["face"]
    crops = face.tensors["image_grid_thw"].shape[0] if "image_grid_thw" in face.tensors else face.tensors["pixel_values"].shape[0]
    assert 1 <= crops <= 4
    encoded = NativeConversation(processor).encode(
        [{"role": "user", "content": "<video> <face> Which emotion?"}, {"role": "assistant", "content": "happy"}], out.inputs)
    assert [m.modality for m in encoded.media] == ["video", "face"]
    text = processor.tokenizer.decode(encoded.input_ids)
    assert "emoreason_face" not in text and text.index("Which emotion?") > text.rindex(processor.arch.pad_tokens["image"])
    model = tf.AutoModelForImageTextToText.from_pretrained(base)
    assert torch.isfinite(model(**collate(processor, [encoded])).loss)  # the backbone's own count checks pass

    no_face = featurizer.featurize({"video": clip})  # the gradient clip has no face
    assert no_face.absent["face"].reason == "no_face" and not no_face.absent["face"].fault


def test_a_path_refused_before_decoding_is_a_fault(omni):
    from emoreason.media.errors import MediaError

    refused = MediaError("outside_root", "clips/link.mp4")  # what sample_files gives for a path escaping the root
    out = omni.featurize({"video": refused})
    assert out.inputs == {} and out.absent["video"].fault and out.absent["audio"].fault
    with pytest.raises(MediaError) as raised:
        out.raise_for_fault()
    assert raised.value is refused
