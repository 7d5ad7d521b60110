"""A pytest plugin for the gate's integration test: registers ``slow-fp32``,
the FP32 model doing its forward four times (a deliberate 4x slowdown: far enough beyond the
test's 1.3x bound that it fails even when the short run's A/A control is too noisy to judge a
pass -- a budget then still fails when its CI widened by the A/A's drift lies beyond the bound)."""
import dataclasses

from compressors.base import Compressor, CompressorConfig, register


@dataclasses.dataclass(frozen=True)
class SlowConfig(CompressorConfig):
    pass


def _slow(model):
    forward = model.forward

    def four_times(*args, **kwargs):
        for _ in range(3):
            forward(*args, **kwargs)
        return forward(*args, **kwargs)

    model.forward = four_times
    return model


@register
class SlowFP32(Compressor):
    name = "slow-fp32"
    config_cls = SlowConfig

    def compress(self, model, config):
        return _slow(model)

    def restore(self, skeleton, config):
        return _slow(skeleton)
