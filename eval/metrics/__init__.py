"""The metrics as local `evaluate` modules: evaluate.load("<this folder>/<name>.py") works offline."""
