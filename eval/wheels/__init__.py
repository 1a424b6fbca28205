"""Emotion wheels shipped with emoreason (YAML data; see emoreason.eval.taxonomy)."""
