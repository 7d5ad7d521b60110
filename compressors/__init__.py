"""Variant producers.  ``compressors.build(name, model, **options)`` returns the
compressed variant; importing this package registers every compressor."""
from . import fp32, quantize  # noqa: F401  (registration side effects)
from .base import (
    CompressionError,
    Compressor,
    CompressorConfig,
    build,
    get,
    known_variants,
    make_config,
    register,
)

__all__ = [
    "CompressionError", "Compressor", "CompressorConfig", "build", "get",
    "known_variants", "make_config", "register",
]
