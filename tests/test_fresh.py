"""Fresh-process measurements on a tiny saved variant (real subprocesses)."""
import pytest
import torch

import compressors
from harness.backends import variants
from harness.measure import cold_start, memory, page_cache
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
def test_cold_start_worker_reports_a_breakdown_from_the_spawn(saved, name):
    dirs, inputs = saved
    result = run_worker("cold-start", dirs[name], inputs, threads=1)
    assert set(cold_start.FIELDS) <= set(result)
    assert result["load_ms"] > 0 and result["first_forward_ms"] > 0 and result["interpreter_ms"] > 0
    assert result["cold_start_ms"] == pytest.approx(result["load_ms"] + result["first_forward_ms"])
    # imports dominate a tiny model's process start; they are reported apart.
    assert result["import_ms"] > result["load_ms"]
    # from the parent's spawn: every phase inside it, nothing counted twice
    parts = result["interpreter_ms"] + result["import_ms"] + result["cold_start_ms"]
    assert parts <= result["time_to_first_result_ms"] <= parts + 50
    assert result["page_cache"] == "warm" and result["torch_imported"] is True


def test_a_larger_batch_after_the_timed_phases_reports_its_activation_memory(saved, tmp_path):
    dirs, inputs = saved
    big = tmp_path / "batch.pt"
    ids = torch.randint(1000, 5000, (64, 128))
    torch.save({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, big)
    result = run_worker("cold-start", dirs["fp32"], inputs, threads=1, batch_inputs=big)
    # 64 x 4 heads x 128 x 128 float32 attention scores alone are 16.8 MB; a tiny model's weights are < 5 MB
    assert result["batch_size"] == 64 and result["batch_peak_source"] == "VmHWM"
    assert 8 < result["batch_activation_mb"] < 400
    summary = memory.summarize([result, run_worker("cold-start", dirs["fp32"], inputs, threads=1)])
    assert summary["batch_memory_samples"] == 1 and summary["batch_activation_mb"] == result["batch_activation_mb"]


def test_a_cold_cache_sample_evicts_the_variant_files_first(saved):
    dirs, inputs = saved
    result = run_worker("cold-start", dirs["fp32"], inputs, threads=1, page_cache="cold")
    # the parent read the files just before (checksums): they were cached, and the eviction took
    assert result["resident_before"] > 0.5
    assert result["page_cache"] == "cold" and result["resident_after"] <= page_cache.MAX_RESIDENT_AFTER
    # and the worker read them back from below the page cache
    assert page_cache.resident_pages(next(dirs["fp32"].glob("*.safetensors")))[0] > 0


def test_eviction_is_measured_on_the_files_themselves(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x" * (1 << 20))
    f.read_bytes()
    resident, total = page_cache.resident_pages(f)
    assert total == (1 << 20) // page_cache.mmap.PAGESIZE and resident == total
    record = page_cache.evict(tmp_path)
    assert record["resident_before"] == 1.0 and record["resident_after"] <= page_cache.MAX_RESIDENT_AFTER
    assert record["evicted_mb"] == pytest.approx(1.048576)


def test_unknown_page_cache_state_is_refused(saved):
    dirs, inputs = saved
    with pytest.raises(ValueError, match="page_cache must be 'warm' or 'cold'"):
        run_worker("cold-start", dirs["fp32"], inputs, threads=1, page_cache="lukewarm")


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


def test_summaries_take_medians_of_warm_and_cold_samples_apart():
    warm = [{"page_cache": "warm", "import_ms": i, "load_ms": i, "first_forward_ms": i, "cold_start_ms": 2 * i,
             "interpreter_ms": 1, "time_to_first_result_ms": 3 * i + 1} for i in (1, 5, 3)]
    cold = [{"page_cache": p, "resident_after": r, "load_ms": 10, "first_forward_ms": 1, "cold_start_ms": 11,
             "time_to_first_result_ms": 20} for p, r in (("cold", 0.0), ("cold (incomplete)", 0.2))]
    s = cold_start.summarize(warm + cold)
    assert s["cold_start_ms"] == 6 and s["time_to_first_result_ms"] == 10 and s["cold_start_samples"] == 3
    assert s["cold_cache_cold_start_ms"] == 11 and s["cold_cache_samples"] == 2
    assert s["cold_cache_label"] == "cold (incomplete)" and s["cold_cache_resident_after"] == 0.2
    assert cold_start.summarize(warm)["cold_cache_cold_start_ms"] is None
    with pytest.raises(ValueError):
        cold_start.summarize(cold)


@pytest.mark.parametrize(("have", "warm", "cold", "total", "todo"), [
    ([], 2, 2, 0, ["warm", "cold", "warm", "cold"]),
    ([], 3, 1, 0, ["warm", "cold", "warm", "warm"]),
    (["warm", "cold", "warm", "cold"], 0, 0, 3, []),         # memory reuses the cold-start processes
    (["warm", "cold"], 0, 0, 3, ["warm"]),                   # ... and tops them up with warm ones
    (["warm"], 2, 2, 0, ["warm", "cold", "cold"]),
])
def test_the_sample_plan_reuses_what_ran_and_alternates(have, warm, cold, total, todo):
    assert cold_start.plan([{"page_cache": p} for p in have], warm, cold, total) == todo
