"""Instruction builders: recognition, EMER-style explanation and chain-of-thought conversations."""
