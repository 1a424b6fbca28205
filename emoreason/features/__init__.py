"""Content-addressed fp16 cache of encoder features."""
