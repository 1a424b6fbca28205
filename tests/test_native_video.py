"""Our torch-only Qwen video path: equal to Qwen2VLVideoProcessor where torchvision imports, and to
transformers' own image path on what both can express here."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import transformers as tf

from emoreason.native.video import QwenVideoSettings, qwen_video_inputs, resize_frames
from native_twins import twin_dir

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
NO_TORCHVISION = "transformers' video processors need torchvision, which cannot load beside this machine's CPU torch"


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory) -> str:
    return twin_dir(tmp_path_factory, "qwen2_5_vl")


def test_two_equal_frames_patchify_like_the_image_processor(vl_dir):
    # A still image is a two-frame video to Qwen2-VL: the image processor repeats it in time. At a size
    # that needs no resize, both paths must give the same patches in the same order.
    frame = _frames(1, 56, 84)
    settings = QwenVideoSettings.from_dir(vl_dir)
    pixels, grid = qwen_video_inputs(np.repeat(frame, 2, axis=0), settings)
    image = tf.AutoImageProcessor.from_pretrained(vl_dir)(list(frame), return_tensors="pt")
    assert grid.tolist() == image["image_grid_thw"][0].tolist() == [1, 4, 6]
    torch.testing.assert_close(pixels, image["pixel_values"], atol=1e-5, rtol=0)


def test_token_count_and_time_padding(vl_dir):
    settings = QwenVideoSettings.from_dir(vl_dir)
    frames = _frames(3, 96, 128)
    pixels, grid = qwen_video_inputs(frames, settings)
    assert grid.tolist() == [2, 6, 10]  # 96x128 -> 84x140 (11760 <= 112*112 pixels); 3 frames padded to 4
    assert pixels.shape == (2 * 6 * 10, 3 * 2 * 14 * 14)
    assert settings.tokens(3, 96, 128) == 2 * 6 * 10 // 4
    # The padded time step repeats the last frame: both temporal halves of its patches are equal.
    last = pixels[60:].view(60, 3, 2, 14 * 14)
    torch.testing.assert_close(last[:, :, 0], last[:, :, 1])


def test_max_pixels_override_and_frame_limit(vl_dir):
    small = QwenVideoSettings.from_dir(vl_dir, max_pixels=56 * 56)
    _, grid = qwen_video_inputs(_frames(2, 96, 128), small)
    assert int(grid[1] * grid[2]) * 14 * 14 <= 56 * 56
    with pytest.raises(ValueError, match="max_frames=768"):
        qwen_video_inputs(np.zeros((769, 28, 28, 3), np.uint8), QwenVideoSettings.from_dir(vl_dir))


def test_resize_keeps_constants_and_sizes():
    frames = torch.full((2, 3, 50, 70), 77, dtype=torch.uint8)
    out = resize_frames(frames, 28, 56)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 28, 56)
    assert bool((out == 77).all())
    assert resize_frames(frames, 50, 70) is frames


@pytest.mark.skipif(not HAS_TORCHVISION, reason=NO_TORCHVISION)
@pytest.mark.parametrize("size", [(56, 84), (96, 128), (250, 170)])
def test_equal_to_the_video_processor(vl_dir, size):
    video_processor = tf.AutoVideoProcessor.from_pretrained(vl_dir)
    frames = _frames(5, *size)
    ref = video_processor(videos=[frames], do_sample_frames=False, cap_pixels_per_frame=False, return_tensors="pt")
    pixels, grid = qwen_video_inputs(frames, QwenVideoSettings.from_dir(vl_dir))
    assert ref["video_grid_thw"][0].tolist() == grid.tolist()
    # Same resize arithmetic; allow one uint8 step where a platform's bicubic kernel rounds differently.
    torch.testing.assert_close(pixels, ref["pixel_values_videos"], atol=1.01 / 255 / 0.26, rtol=0)


@pytest.mark.skipif(not HAS_TORCHVISION, reason=NO_TORCHVISION)
def test_input_ids_equal_the_backbone_processor(vl_dir):
    from emoreason.native.conversation import NativeConversation, collate
    from emoreason.native.processor import NativeProcessor

    frames = _frames(4, 96, 128)
    processor = NativeProcessor.from_pretrained(vl_dir)
    item = processor.video_inputs(frames, sampled_fps=2.0)
    ours = collate(processor, [NativeConversation(processor).encode([{"role": "user", "content": "<video> Which emotion?"}], {"video": item}, generation_prompt=True)])
    reference = tf.AutoProcessor.from_pretrained(vl_dir)
    # The same content typed: our placeholder keeps the user's text after it as written, space included.
    text = reference.apply_chat_template([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": " Which emotion?"}]}],
                                         tokenize=False, add_generation_prompt=True)
    ref = reference(text=[text], videos=[frames], videos_kwargs={"do_sample_frames": False}, return_tensors="pt")
    assert ours["input_ids"].tolist() == ref["input_ids"].tolist()
    assert ours["mm_token_type_ids"].tolist() == ref["mm_token_type_ids"].tolist()
