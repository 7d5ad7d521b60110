"""A pytest plugin for the gate's integration test: registers ``slow-fp32``,
the FP32 model doing its forward twice (a deliberate 2x slowdown)."""
import dataclasses

from compressors.base import Compressor, CompressorConfig, register


@dataclasses.dataclass(frozen=True)
class SlowConfig(CompressorConfig):
    pass


def _slow(model):
    forward = model.forward

    def twice(*args, **kwargs):
        forward(*args, **kwargs)
        return forward(*args, **kwargs)

    model.forward = twice
    return model


@register
class SlowFP32(Compressor):
    name = "slow-fp32"
    config_cls = SlowConfig

    def compress(self, model, config):
        return _slow(model)

    def restore(self, skeleton, config):
        return _slow(skeleton)
