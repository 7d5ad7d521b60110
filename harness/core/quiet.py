"""Known third-party import noise, dropped record by record.

torchao is imported by transformers itself (``transformers.quantizers`` imports
it whenever it is installed, i.e. on the first model class a process loads), not
only by our ``int8-dynamic@torchao`` engine.  On a CPU-only machine that import
logs its CUDA-only kernels failing to load (harmless: the INT8 path runs on
``torch._int_mm``) and torch deprecating torchao's ``register_constant`` on an
Enum.  :func:`drop_known_import_noise` adds a filter to exactly those two loggers
that drops exactly those records; every other record of theirs, and all of our
own output, still shows.
"""
from __future__ import annotations

import logging

# logger name -> text of the only records dropped from it
KNOWN_IMPORT_NOISE = {
    "torchao": "Failed to load ",
    "torch.utils._pytree": "is an Enum subclass and is now natively supported",
}


class _DropKnown(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__(name="edgebench-known-import-noise")
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in str(record.msg)


def drop_known_import_noise() -> None:
    """Install the filters (once per process; calling again adds nothing)."""
    for name, text in KNOWN_IMPORT_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown(text))
