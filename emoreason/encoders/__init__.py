"""Frozen per-modality encoders loaded through transformers AutoModel and their processors.

config.EncoderConfig says which checkpoint, layer and pooling; frozen.load_encoder gives the
FrozenEncoder with encode_audio / encode_images / encode_video; fingerprint.model_fingerprint and
EncoderConfig.settings_fingerprint key feature caches; tiny builds random-weight checkpoints for tests.
"""
