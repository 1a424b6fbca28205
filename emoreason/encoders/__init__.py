"""Frozen per-modality encoders loaded through transformers AutoModel and their processors."""
