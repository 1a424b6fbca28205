"""Decoded frames -> a Qwen2-VL-family backbone's video inputs, in torch, without torchvision.

transformers' Qwen2VLVideoProcessor imports torchvision at module level, and the PyPI torchvision
wheel cannot load beside a CPU torch (../shared/ENVIRONMENT.md). This module does what that
processor does once frames are sampled (do_sample_frames=False, which is how emoreason calls it:
our own FrameSampling picks the frames), step for step:

1. smart_resize each frame to multiples of patch_size * merge_size within [shortest_edge, longest_edge]
   pixels; the resize is torchvision's tensor path written with torch alone (bicubic, antialiased, on
   the uint8 frames: torchvision 0.28 resizes uint8 natively on CPU for bicubic, and the float32
   round trip it used before differs by up to 21 levels at edges, measured on random frames);
2. rescale and normalize in one step, (x - 255 * mean) / (255 * std), in float32;
3. pad the frame count to a multiple of temporal_patch_size by repeating the last frame;
4. patchify into [grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size ** 2], ordered
   (t, h-block, w-block, h-in-merge, w-in-merge) so the merger's 2x2 groups are contiguous.

tests/test_native_video.py checks the result against Qwen2VLVideoProcessor where torchvision imports.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from emoreason.media.errors import MediaError


@dataclasses.dataclass(frozen=True)
class QwenVideoSettings:
    """The video processor settings that shape pixel_values_videos (video_preprocessor_config.json)."""

    min_pixels: int
    max_pixels: int
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)
    rescale_factor: float = 1 / 255
    max_frames: int = 768

    @classmethod
    def from_dir(cls, directory: str | Path, max_pixels: int | None = None, min_pixels: int | None = None) -> QwenVideoSettings:
        path = Path(directory) / "video_preprocessor_config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the backbone has no video processor config (expected video_preprocessor_config.json)")
        cfg = json.loads(path.read_text())
        size = cfg.get("size") or {}
        return cls(
            min_pixels=min_pixels or size.get("shortest_edge") or cfg.get("min_pixels") or 128 * 28 * 28,
            max_pixels=max_pixels or size.get("longest_edge") or cfg.get("max_pixels") or 768 * 28 * 28,
            patch_size=cfg.get("patch_size", 14),
            temporal_patch_size=cfg.get("temporal_patch_size", 2),
            merge_size=cfg.get("merge_size", 2),
            image_mean=tuple(cfg.get("image_mean", cls.image_mean)),
            image_std=tuple(cfg.get("image_std", cls.image_std)),
            rescale_factor=cfg.get("rescale_factor", 1 / 255),
            max_frames=cfg.get("max_frames", 768),
        )

    def tokens(self, num_frames: int, height: int, width: int) -> int:
        """LLM positions a clip of this shape takes (what the processor's replace_video_token writes)."""
        h, w = smart_resize(height, width, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)
        grid_t = -(-num_frames // self.temporal_patch_size)
        return grid_t * (h // self.patch_size) * (w // self.patch_size) // self.merge_size**2


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[n, 3, h, w] uint8 -> [n, 3, height, width] uint8, as torchvision's resize does it for uint8 bicubic on CPU
    (`_do_native_uint8_resize_on_cpu`: interpolate on the uint8 tensor itself, no float32 round trip)."""
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return F.interpolate(frames.contiguous(), size=(height, width), mode="bicubic", align_corners=False, antialias=True)


def qwen_video_inputs(frames: np.ndarray, settings: QwenVideoSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """frames [n, h, w, 3] uint8 RGB -> (pixel_values_videos [t*gh*gw, 3*tp*p*p] float32, video_grid_thw [3])."""
    n = len(frames)
    if n == 0:
        raise MediaError("empty", None, "no frames to encode")
    if n > settings.max_frames:
        raise ValueError(f"media.video: {n} frames is over the video processor's max_frames={settings.max_frames}")
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # [n, 3, h, w] uint8
    p, m, tp = settings.patch_size, settings.merge_size, settings.temporal_patch_size
    height, width = smart_resize(video.shape[-2], video.shape[-1], p * m, settings.min_pixels, settings.max_pixels)
    video = resize_frames(video, height, width)
    # Fused rescale + normalize as transformers does it: mean and std scaled by 1 / rescale_factor.
    mean = torch.tensor(settings.image_mean) * (1.0 / settings.rescale_factor)
    std = torch.tensor(settings.image_std) * (1.0 / settings.rescale_factor)
    video = (video.to(torch.float32) - mean[None, :, None, None]) / std[None, :, None, None]  # [n, 3, H, W]
    if pad := -n % tp:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
    grid_t, grid_h, grid_w = video.shape[0] // tp, height // p, width // p
    patches = video.view(grid_t, tp, 3, grid_h // m, m, p, grid_w // m, m, p)
    # [t, tp, c, bh, mh, ph, bw, mw, pw] -> [t, bh, bw, mh, mw, c, tp, ph, pw]
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    pixel_values = patches.reshape(grid_t * grid_h * grid_w, 3 * tp * p * p)
    return pixel_values, torch.tensor([grid_t, grid_h, grid_w])
