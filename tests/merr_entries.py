"""MERR annotation entries as the published MERR_coarse/fine_grained.json files spell them, shared by the
adapter tests and the action-unit round trips."""

from __future__ import annotations

# One clip with every field MERR-coarse carries: AUs, their priors, the peak frame and its AUs.
MERR_ANGRY_ENTRY = {
    "AU_list": ["AU04", "AU07"],
    "visual_prior_list": ["brow lowerer", "lid tightener"],
    "audio_prior_list": "The speaker's tone is sharp and loud.",
    "peak_index": "12",
    "peak_AU_list": ["AU04"],
    "pseu_emotion": "angry",
    "caption": "[visual] brow lowerer [audio] sharp tone",
}
