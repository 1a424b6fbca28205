"""Connectors: Q-Former, token-concat and landmark region cross-attention (shapes, masks, counts, gradients)."""

from __future__ import annotations

import pytest
import torch

from emoreason.config import ConfigError
from emoreason.model.landmark_attention import (
    LANDMARK_REGIONS,
    NUM_LANDMARKS,
    LandmarkAttentionConfig,
    LandmarkRegionAttention,
)
from emoreason.model.projectors import ProjectorConfig, build_projector
from emoreason.model.qformer import QFormerProjector

D_IN, D_LLM = 12, 16


def padded_batch(lengths: list[int], d: int = D_IN, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    t = max(lengths)
    features = torch.randn(len(lengths), t, d, generator=generator)  # [b, t, d]
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [b, t]
    return features, mask


def assert_gradients_everywhere(module: torch.nn.Module) -> None:
    for name, param in module.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


# token_concat


def concat_projector(concat: int = 4, drop: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ProjectorConfig(kind="token_concat", concat=concat, drop_prefix_tokens=drop)
    return build_projector(cfg, D_IN, D_LLM).eval()


@pytest.mark.parametrize(("lengths", "concat", "drop", "expected"), [
    ([8, 4, 0], 4, 0, [2, 1, 0]),
    ([9, 5, 0], 4, 1, [2, 1, 0]),  # CLS + 8 patches, CLS + 4 patches
    ([6, 3], 3, 0, [2, 1]),
    ([7, 7], 1, 1, [6, 6]),
])
def test_token_concat_shapes_and_masks(lengths, concat, drop, expected):
    projector = concat_projector(concat, drop)
    features, mask = padded_batch(lengths)
    tokens, out_mask = projector(features, mask)
    assert tokens.shape == (len(lengths), max(expected), D_LLM)
    assert out_mask.sum(dim=1).tolist() == expected == [projector.num_output_tokens(n) for n in lengths]
    assert (tokens[~out_mask] == 0).all()


def test_token_concat_groups_adjacent_tokens_in_order():
    # Emotion-LLaMA's view(b, t / 4, 4 * d): output token i sees input tokens 4i..4i+3, concatenated in order.
    projector = concat_projector(concat=4, drop=1)
    features, mask = padded_batch([9])
    tokens, _ = projector(features, mask)
    expected = projector.proj(features[0, 1:].reshape(2, 4 * D_IN))
    torch.testing.assert_close(tokens[0], expected)


def test_token_concat_ignores_padding_values():
    projector = concat_projector(concat=2)
    features, mask = padded_batch([6, 2])
    noisy = torch.where(mask.unsqueeze(-1), features, torch.full_like(features, float("nan")))
    with torch.no_grad():
        clean, _ = projector(features, mask)
        dirty, _ = projector(noisy, mask)
        alone, _ = projector(features[1:, :2], mask[1:, :2])
    assert torch.equal(clean, dirty)
    torch.testing.assert_close(clean[1, :1], alone[0])


def test_token_concat_count_check_names_the_key():
    projector = concat_projector(concat=4)
    with pytest.raises(ValueError, match=r"key 'concat'.*1025.*drop_prefix_tokens=1"):
        projector.num_output_tokens(1025)  # EVA-CLIP at 448 px: CLS + 1024 patches
    assert concat_projector(concat=4, drop=1).num_output_tokens(1025) == 256
    features, mask = padded_batch([6, 4])
    with pytest.raises(ValueError, match="key 'concat'"):
        projector(features, mask)  # the forward checks too
    with pytest.raises(ValueError, match="key 'concat'"):
        concat_projector(concat=2, drop=3).num_output_tokens(3)  # nothing left after the prefix


def test_token_concat_gradients():
    projector = concat_projector(concat=2, drop=1).train()
    features, mask = padded_batch([5, 3, 0])
    tokens, out_mask = projector(features, mask)
    tokens[out_mask].pow(2).sum().backward()
    assert_gradients_everywhere(projector)


# qformer


def qformer(num_tokens: int = 3, **fields) -> QFormerProjector:
    torch.manual_seed(0)
    cfg = ProjectorConfig(kind="qformer", num_tokens=num_tokens, hidden_size=8, num_heads=2, **fields)
    return build_projector(cfg, D_IN, D_LLM).eval()


def test_qformer_reuses_transformers_blip2_qformer():
    from transformers import Blip2QFormerModel

    projector = qformer(depth=3, cross_attention_frequency=2)
    assert isinstance(projector.qformer, Blip2QFormerModel)
    layers = projector.qformer.encoder.layer
    assert [layer.has_cross_attention for layer in layers] == [True, False, True]
    assert layers[0].crossattention.attention.key.in_features == D_IN  # keys read the encoder width


@pytest.mark.parametrize(("lengths", "fields"), [
    ([5, 2, 0], {}),
    ([9, 3], {"drop_prefix_tokens": 1}),
    ([4, 1, 4], {"max_positions": 4}),
    ([1], {"num_tokens": 8}),
])
def test_qformer_shapes_masks_and_padding(lengths, fields):
    projector = qformer(**fields)
    k = projector.num_tokens
    features, mask = padded_batch(lengths)
    noisy = torch.where(mask.unsqueeze(-1), features, 1e4 * torch.randn_like(features))
    with torch.no_grad():
        tokens, out_mask = projector(features, mask)
        dirty, _ = projector(noisy, mask)
        alone, _ = projector(features[:1, :lengths[0]], mask[:1, :lengths[0]])
    assert tokens.shape == (len(lengths), k, D_LLM)
    assert out_mask.sum(dim=1).tolist() == [projector.num_output_tokens(n) for n in lengths]
    assert (tokens[~out_mask] == 0).all() and torch.isfinite(tokens).all()
    torch.testing.assert_close(tokens, dirty)
    torch.testing.assert_close(tokens[0], alone[0])


def test_qformer_count_checks():
    assert qformer(drop_prefix_tokens=1).num_output_tokens(1) == 0  # only the CLS: nothing to query
    with pytest.raises(ValueError, match="key 'max_positions'"):
        qformer(max_positions=4).num_output_tokens(5)
    features, mask = padded_batch([6])
    with pytest.raises(ValueError, match="key 'max_positions'"):
        qformer(max_positions=4)(features, mask)


def test_qformer_gradients():
    projector = qformer(max_positions=6).train()
    features, mask = padded_batch([5, 2, 0])
    tokens, out_mask = projector(features, mask)
    tokens[out_mask].pow(2).sum().backward()
    assert_gradients_everywhere(projector)


@pytest.mark.parametrize(("fields", "key"), [
    ({"kind": "token_concat"}, "concat"),
    ({"kind": "token_concat", "concat": 0}, "concat"),
    ({"kind": "mlp", "concat": 4}, "concat"),
    ({"kind": "qformer"}, "num_tokens"),
    ({"kind": "qformer", "num_tokens": 4, "max_positions": 0}, "max_positions"),
    ({"kind": "mlp", "max_positions": 4}, "max_positions"),
    ({"kind": "qformer", "num_tokens": 4, "cross_attention_frequency": 3}, "cross_attention_frequency"),
    ({"kind": "mlp", "drop_prefix_tokens": 1}, "drop_prefix_tokens"),
    ({"kind": "token_concat", "concat": 2, "drop_prefix_tokens": -1}, "drop_prefix_tokens"),
])
def test_connector_config_errors_name_the_key(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        ProjectorConfig(**fields)


# landmark region cross-attention


def landmark_block(num_heads: int = 2, branch_scale: float = 0.1) -> LandmarkRegionAttention:
    torch.manual_seed(0)
    cfg = LandmarkAttentionConfig(enabled=True, num_heads=num_heads, branch_scale=branch_scale)
    return LandmarkRegionAttention(cfg, D_LLM).eval()


def landmark_batch(frames: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    f = max(frames)
    points = torch.rand(len(frames), f, NUM_LANDMARKS, 2, generator=generator)  # [b, f, 68, 2] in [0, 1]
    mask = torch.arange(f).unsqueeze(0) < torch.tensor(frames).unsqueeze(1)  # [b, f]
    return points, mask


def test_landmark_regions_cover_the_68_points_once():
    covered = sorted(i for s in LANDMARK_REGIONS.values() for i in range(s.start, s.stop))
    assert covered == list(range(NUM_LANDMARKS)) and len(LANDMARK_REGIONS) == 9


@pytest.mark.parametrize(("tokens", "frames"), [([6, 4, 0], [2, 1, 0]), ([8, 8], [4, 0]), ([3], [3])])
def test_landmark_block_shapes_and_untouched_items(tokens, frames):
    block = landmark_block()
    visual, visual_mask = padded_batch(tokens, d=D_LLM)
    visual = visual.masked_fill(~visual_mask.unsqueeze(-1), 0.0)  # projectors zero their padding
    points, point_mask = landmark_batch(frames)
    with torch.no_grad():
        out, out_mask = block(visual, visual_mask, points, point_mask)
    assert out.shape == visual.shape and torch.equal(out_mask, visual_mask)
    for item, f in enumerate(frames):
        changed = not torch.equal(out[item], visual[item])
        assert changed == (f > 0 and tokens[item] > 0), item  # no landmarks: visual tokens unchanged
    assert (out[~visual_mask] == 0).all()


def test_landmark_block_per_frame_attention_and_padding():
    block = landmark_block()
    visual, visual_mask = padded_batch([6, 3], d=D_LLM)  # 3 tokens per frame
    points, point_mask = landmark_batch([2, 1])
    moved = points.clone()
    moved[0, 1] = torch.rand(NUM_LANDMARKS, 2)  # item 0's second frame only
    moved[1, 1] = float("nan")  # item 1's padded frame
    with torch.no_grad():
        out, _ = block(visual, visual_mask, points, point_mask)
        out_moved, _ = block(visual, visual_mask, moved, point_mask)
        alone, _ = block(visual[1:, :3], visual_mask[1:, :3], points[1:, :1], point_mask[1:, :1])
    assert torch.equal(out[0, :3], out_moved[0, :3])  # frame-0 tokens never see frame-1 landmarks
    assert not torch.equal(out[0, 3:], out_moved[0, 3:])
    assert torch.equal(out[1], out_moved[1])
    torch.testing.assert_close(out[1, :3], alone[0])


def test_landmark_block_scale_and_flat_input():
    visual, visual_mask = padded_batch([4], d=D_LLM)
    points, point_mask = landmark_batch([2])
    with torch.no_grad():
        small = landmark_block(branch_scale=0.1)(visual, visual_mask, points, point_mask)[0] - visual
        large = landmark_block(branch_scale=0.2)(visual, visual_mask, points, point_mask)[0] - visual
        flat = landmark_block(branch_scale=0.1)(visual, visual_mask, points.flatten(2), point_mask)[0] - visual
    torch.testing.assert_close(large, 2 * small)
    torch.testing.assert_close(flat, small)


def test_landmark_block_bad_input_names_the_key():
    block = landmark_block()
    visual, visual_mask = padded_batch([6], d=D_LLM)
    points, point_mask = landmark_batch([4])
    with pytest.raises(ValueError, match=r"key 'landmarks'.*6 visual tokens.*4 landmark frames"):
        block(visual, visual_mask, points, point_mask)
    with pytest.raises(ValueError, match=r"key 'landmarks'.*68, 2"):
        block(visual, visual_mask, torch.rand(1, 2, 5, 2), point_mask[:, :2])


def test_landmark_block_gradients():
    block = landmark_block().train()
    visual, visual_mask = padded_batch([6, 2, 0], d=D_LLM)
    visual.requires_grad_(True)
    points, point_mask = landmark_batch([3, 1, 1])
    out, out_mask = block(visual, visual_mask, points, point_mask)
    out[out_mask].pow(2).sum().backward()
    assert_gradients_everywhere(block)
    assert visual.grad is not None and torch.isfinite(visual.grad).all()


@pytest.mark.parametrize(("fields", "key"), [
    ({"modality": "audio"}, "modality"),
    ({"num_heads": 0}, "num_heads"),
    ({"branch_scale": 0}, "branch_scale"),
    ({"enabled": "yes"}, "enabled"),
])
def test_landmark_config_errors_name_the_key(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        LandmarkAttentionConfig(**fields)
    with pytest.raises(ConfigError, match="key 'num_heads'"):
        LandmarkRegionAttention(LandmarkAttentionConfig(num_heads=3), D_LLM)
