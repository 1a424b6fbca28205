"""Inference: export, the engine interface with HF and vLLM backends, the OpenAI-compatible server, chat and batch inference."""
