"""Why a sample could not become an instruction conversation."""

from __future__ import annotations


class InstructionError(ValueError):
    """A sample that lacks what a builder needs, named by sample id and schema field."""

    def __init__(self, sample_id: str, field: str, message: str):
        self.sample_id, self.field, self.message = sample_id, field, message
        super().__init__(f"sample {sample_id!r}: field '{field}': {message}")
