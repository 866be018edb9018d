"""The error a GGUF file that llama.cpp cannot safely read raises, in a module of its own:
the engine catches it, and importing the reader for it (gguf's constants, ~12 ms of CPU)
would put that on the way to the first token when the file's check is remembered
(``core/gguf_checked.py``)."""

from __future__ import annotations


class GGUFValidationError(Exception):
    """The file is not a GGUF file llama.cpp can safely read; ``str()`` says why."""
