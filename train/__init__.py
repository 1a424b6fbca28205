"""Projector alignment, LoRA instruction tuning and checkpointed, resumable training runs."""
