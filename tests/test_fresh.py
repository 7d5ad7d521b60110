"""Fresh-process measurements on a tiny saved variant (real subprocesses)."""
import pytest
import torch

import compressors
from harness.backends import variants
from harness.measure import cold_start, memory
from harness.measure.fresh import MeasurementError, run_worker


@pytest.fixture
def saved(tmp_path, tiny_model, tiny_inputs):
    inputs = tmp_path / "inputs.pt"
    torch.save(tiny_inputs, inputs)
    out = {}
    for name in ("fp32", "int8-dynamic"):
        d = tmp_path / name
        variants.save_variant(compressors.build(name, tiny_model), d, profile="t", variant=name, source_key="k")
        out[name] = d
    return out, inputs


@pytest.mark.parametrize("name", ["fp32", "int8-dynamic"])
def test_cold_start_worker_reports_a_breakdown(saved, name):
    dirs, inputs = saved
    result = run_worker("cold-start", dirs[name], inputs, threads=1)
    assert set(cold_start.FIELDS) <= set(result)
    assert result["load_ms"] > 0 and result["first_forward_ms"] > 0
    assert result["cold_start_ms"] == pytest.approx(result["load_ms"] + result["first_forward_ms"])
    # imports dominate a tiny model's process start; they are reported apart.
    assert result["import_ms"] > result["load_ms"]


def test_memory_worker_sees_the_model_resident_by_kind(saved):
    import sys

    dirs, inputs = saved
    result = run_worker("memory", dirs["fp32"], inputs, threads=1)
    weights_mb = sum(f.stat().st_size for f in dirs["fp32"].glob("*.safetensors")) / 1e6
    if sys.platform == "linux":
        assert result["kernel_peak_source"] == "VmHWM" and result["kernel_peak_rss_mb"] is not None
    # The loaded weights stay resident (as tensors or mapped pages): a reading taken before the load,
    # or of another process, would not see them.
    assert result["steady_anon_mb"] + result["steady_file_mb"] >= 0.5 * weights_mb > 0
    assert result["peak_rss_delta_mb"] >= result["steady_anon_mb"] + result["steady_file_mb"] - 0.5
    summary = memory.summarize([result, result])
    assert summary["memory_samples"] == 2 and summary["peak_rss_mb"] == result["peak_rss_mb"]


def test_without_a_vmhwm_reset_the_peak_is_the_sampler_never_ru_maxrss(saved):
    # In a fresh interpreter, as the suite runs it: in pytest's own process the tiny load can fit in
    # heap that earlier tests freed, leaving no rise for the sampler to see.
    import json
    import subprocess
    import sys

    from harness.core.paths import ROOT

    dirs, inputs = saved
    script = ("import json, sys\nfrom pathlib import Path\n"
              "from harness.measure import memory\n"
              "memory._reset_hwm = lambda: '/proc/self/clear_refs not writable (test)'\n"
              "print(json.dumps(memory.worker_peak_memory(Path(sys.argv[1]), Path(sys.argv[2]), threads=1)))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(dirs["fp32"]), str(inputs)], capture_output=True,
                          text=True, cwd=ROOT, check=True, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["kernel_peak_rss_mb"] is None and result["kernel_peak_source"].startswith("unavailable: /proc")
    assert result["peak_rss_source"] == "sampler" and result["peak_rss_mb"] == result["sampled_peak_rss_mb"]
    assert "ru_maxrss_mb" not in result


def test_a_crashing_worker_is_a_measurement_error(tmp_path, saved):
    _, inputs = saved
    with pytest.raises(MeasurementError, match="cold-start worker .* failed"):
        run_worker("cold-start", tmp_path / "no-such-variant", inputs, threads=1)


def test_summaries_take_medians():
    samples = [{"import_ms": i, "load_ms": i, "first_forward_ms": i, "cold_start_ms": 2 * i} for i in (1, 5, 3)]
    s = cold_start.summarize(samples)
    assert s["cold_start_ms"] == 6 and s["cold_start_samples"] == 3
    with pytest.raises(ValueError):
        cold_start.summarize([])
