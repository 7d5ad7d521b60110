"""The compressors' one exception, in a module of its own: :mod:`compressors.architecture`
raises it and :mod:`compressors.base` (which re-exports it) uses the architecture
adapters, so neither imports the other's dependencies in a circle."""
from __future__ import annotations


class CompressionError(ValueError):
    """Bad compressor input (unknown variant, invalid option, unsupported model); one-line message."""
