"""Projector alignment and LoRA instruction tuning (built in a later issue)."""
