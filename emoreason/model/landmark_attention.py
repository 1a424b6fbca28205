"""Landmark region cross-attention (Face-LLaVA): projected visual tokens query facial-landmark tokens.

Notation: b batch, t projected visual tokens, f frames with landmarks, P = 68 landmark points,
R = 9 face regions, D LLM hidden size, g = t / f visual tokens per frame.

    landmarks [b, f, 68, 2] --9 region Linears + 1 global Linear--> region tokens [b, f, 9, D]
        (each region's flattened points projected to D, plus the projection of all 136 coordinates)
    visual [b, t, D] --MHA(query = visual, key = value = its frame's 9 region tokens)--> [b, t, D]
        x = LayerNorm(visual + attended); x = Linear(x); out = visual + branch_scale * x

A visual token attends only to the region tokens of its own frame: the visual tokens are frame-major
(an encoder's tokens for frame 0, then frame 1, ...), so token j of an item with g tokens per frame
belongs to frame j // g. An item's real visual token count must be a multiple of its landmark
frames; anything else is an error. Items without landmarks keep their visual tokens unchanged.
Coordinates are expected normalised over the face, as the landmark encoder gives them (aligned onto a
neutral reference face and minus it: emoreason/encoders/landmarks.py); Face-LLaVA normalises them to
[0, 1] over the face crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emoreason.config import check
from emoreason.constants import VISUAL_MODALITIES

NUM_LANDMARKS = 68
# The iBUG 68-point layout, grouped as Face-LLaVA's LandmarkRegionProjector groups it.
LANDMARK_REGIONS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "right_brow": slice(17, 22),
    "left_brow": slice(22, 27),
    "nose_bridge": slice(27, 31),
    "nostrils": slice(31, 36),
    "right_eye": slice(36, 42),
    "left_eye": slice(42, 48),
    "outer_lips": slice(48, 60),
    "inner_lips": slice(60, 68),
}


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass
class LandmarkAttentionConfig:
    """Whether and how one visual modality's projected tokens attend to the face's landmarks."""

    enabled: bool = False
    """Add the landmark branch; off by default."""
    modality: str = "face"
    """Visual modality whose projected tokens query the landmark region tokens."""
    num_heads: int = 8
    """Heads of the cross-attention (Face-LLaVA: 8); must divide the LLM hidden size."""
    branch_scale: float = 0.1
    """Scale of the attended branch added back to the visual tokens."""

    def __post_init__(self) -> None:
        check(isinstance(self.enabled, bool), "enabled", "true or false", self.enabled)
        check(self.modality in VISUAL_MODALITIES, "modality", f"a visual modality among {list(VISUAL_MODALITIES)}",
              self.modality)
        check(_is_int(self.num_heads, 1), "num_heads", "an integer >= 1", self.num_heads)
        check(isinstance(self.branch_scale, (int, float)) and not isinstance(self.branch_scale, bool)
              and self.branch_scale > 0, "branch_scale", "a number > 0", self.branch_scale)


def check_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """[b, f, 68, 2], or [b, f, 136] reshaped to it; any other shape is a ValueError naming the key."""
    if landmarks.ndim == 3 and landmarks.shape[-1] == 2 * NUM_LANDMARKS:
        landmarks = landmarks.unflatten(-1, (NUM_LANDMARKS, 2))
    if landmarks.ndim != 4 or tuple(landmarks.shape[2:]) != (NUM_LANDMARKS, 2):
        raise ValueError(f"key 'landmarks': expected [batch, frames, {NUM_LANDMARKS}, 2] (x, y) points "
                         f"or [batch, frames, {2 * NUM_LANDMARKS}], got shape {tuple(landmarks.shape)}")
    return landmarks


class LandmarkRegionAttention(nn.Module):
    """(visual [b, t, D], visual_mask [b, t], landmarks [b, f, 68, 2], landmark_mask [b, f]) -> (visual' [b, t, D], visual_mask)."""

    def __init__(self, cfg: LandmarkAttentionConfig, d_llm: int):
        super().__init__()
        check(d_llm % cfg.num_heads == 0, "num_heads", f"a divisor of the LLM hidden size {d_llm}", cfg.num_heads)
        self.num_heads = cfg.num_heads
        self.branch_scale = float(cfg.branch_scale)
        self.region_proj = nn.ModuleList(nn.Linear(2 * (s.stop - s.start), d_llm) for s in LANDMARK_REGIONS.values())
        self.global_proj = nn.Linear(2 * NUM_LANDMARKS, d_llm)
        self.attn = nn.MultiheadAttention(d_llm, cfg.num_heads, batch_first=True)
        self.norm = nn.LayerNorm(d_llm)
        self.out_proj = nn.Linear(d_llm, d_llm)

    def region_tokens(self, landmarks: torch.Tensor) -> torch.Tensor:
        """[b, f, 68, 2] -> [b, f, 9, D]: each region's projection plus the global projection."""
        regions = torch.stack([proj(landmarks[:, :, s].flatten(2)) for proj, s in
                               zip(self.region_proj, LANDMARK_REGIONS.values())], dim=2)  # [b, f, 9, D]
        return regions + self.global_proj(landmarks.flatten(2)).unsqueeze(2)  # + [b, f, 1, D]

    def forward(self, visual: torch.Tensor, visual_mask: torch.Tensor, landmarks: torch.Tensor,
                landmark_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        landmarks = check_landmarks(landmarks).to(visual.dtype)
        b, t, _ = visual.shape
        frames, num_visual = landmark_mask.sum(dim=1), visual_mask.sum(dim=1)  # [b], [b]
        for item, (n, f) in enumerate(zip(num_visual.tolist(), frames.tolist())):
            if f and n % f:
                raise ValueError(f"key 'landmarks': item {item} has {n} visual tokens, expected a multiple of its "
                                 f"{f} landmark frames (the visual tokens are split evenly over the frames)")
        if t == 0 or landmarks.shape[1] == 0:
            return visual, visual_mask
        # Zero padded frames so NaN or huge coordinates there cannot reach real tokens.
        landmarks = landmarks.masked_fill(~landmark_mask[:, :, None, None], 0.0)
        keys = self.region_tokens(landmarks).flatten(1, 2)  # [b, f * 9, D]
        num_regions = len(LANDMARK_REGIONS)
        per_frame = (num_visual // frames.clamp(min=1)).clamp(min=1)  # [b], g
        query_frame = torch.arange(t, device=visual.device)[None] // per_frame[:, None]  # [b, t]
        key_frame = torch.arange(keys.shape[1], device=visual.device) // num_regions  # [f * 9]
        key_real = landmark_mask.repeat_interleave(num_regions, dim=1)  # [b, f * 9]
        allowed = (query_frame[:, :, None] == key_frame[None, None]) & key_real[:, None]  # [b, t, f * 9]
        allowed &= visual_mask[:, :, None]
        branch = allowed.any(dim=2)  # [b, t]: real visual tokens of items with landmarks
        allowed[:, :, 0] |= ~branch  # one visible key for rows that take no branch, so softmax is not NaN
        attn_mask = (~allowed).repeat_interleave(self.num_heads, dim=0)  # [b * heads, t, f * 9], True = ignore
        attended, _ = self.attn(visual, keys, keys, attn_mask=attn_mask, need_weights=False)  # [b, t, D]
        update = self.out_proj(self.norm(visual + attended))  # [b, t, D]
        out = visual + self.branch_scale * update.masked_fill(~branch[:, :, None], 0.0)
        return out, visual_mask
