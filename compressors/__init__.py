"""Variant producers.  ``compressors.build(name, model, context=None, **options)``
returns the compressed variant; importing this package registers every
compressor.  Names join stages with ``+`` (``"heads-grad@0.2+int8"``)."""
from . import edgemin, fp32, heads, pkd, prune, quantize, slowdown, structured, unstructured  # noqa: F401  (registration side effects)
from .base import (
    CompressionContext,
    CompressionError,
    Compressor,
    CompressorConfig,
    build,
    get,
    known_variants,
    make_config,
    register,
    registering_modules,
    split_spec,
)

__all__ = [
    "CompressionContext", "CompressionError", "Compressor", "CompressorConfig", "build", "get",
    "known_variants", "make_config", "register", "registering_modules", "split_spec",
]
