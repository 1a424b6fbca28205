"""The multimodal emotion LM: projectors, placeholder expansion, the fused model, save/load."""
