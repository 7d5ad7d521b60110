"""harness.results.rows: a run's results read once; each variant's config from its recorded facts."""
from harness.results import rows


def _static(variant, **facts):
    return {"metric": "static", "profile": "minilm-l6", "variant": variant, "size_mb": 1.0, **facts}


def test_recorded_facts_win_over_the_name():
    config = rows.variant_config("magnitude-global@0.5+int8", {
        "stages": "magnitude-global+int8-dynamic", "pruning_target_sparsity": 0.5, "pruning_recovery_epochs": 2,
        "quant_engine": "torch.ao/x86"})
    assert config.methods == ("magnitude-global", "int8-dynamic") and config.chained
    assert config.stages == ("magnitude-global@0.5", "int8") and config.prefixes() == [
        "magnitude-global@0.5", "magnitude-global@0.5+int8"]
    assert (config.target_sparsity, config.recovery_epochs, config.precision) == (0.5, 2, "int8")


def test_a_run_saved_before_the_facts_falls_back_to_the_name():
    config = rows.variant_config("magnitude-layerwise@0.70:recovery_epochs=1")
    assert config.methods == ("magnitude-layerwise",) and not config.chained
    assert (config.target_sparsity, config.recovery_epochs, config.precision) == (0.7, 1, "fp32")
    assert rows.variant_config("heads-grad@0.2+int8").precision == "int8"
    assert rows.variant_config("edgemin-s1@full").target_sparsity is None  # an argument that is no fraction
    assert rows.variant_config("bad:option").methods == ("bad",)  # unparsable options: no arguments


def test_collect_gives_every_section_its_rows_with_the_config():
    results = [_static("fp32"), _static("int8-dynamic", quant_engine="torch.ao/x86"),
               {"metric": "latency", "profile": "minilm-l6", "variant": "fp32", "seq_len": 128, "p50_ms": 2.0,
                "p90_ms": 2.1, "p99_ms": 2.2, "cv": 0.01, "mean_ms": 2.05, "backend_session": {"threads": 1}},
               {"metric": "gemm_peak", "fp32_gflops": 100.0, "size": 512, "threads": 1},
               {"metric": "int8_engine", "profile": "minilm-l6", "variant": "int8-dynamic@x86", "engine": "x86",
                "p50_ms": 1.0, "cv": 0.02}]
    run = rows.collect(results)
    by = {r["variant"]: r for r in run.rows}
    assert set(by) == {"fp32", "int8-dynamic"}  # the engine probe is a machine result, not a row
    assert by["int8-dynamic"]["config"].precision == "int8" and by["fp32"]["config"].precision == "fp32"
    assert "config" not in rows.public(by["fp32"]) and by["fp32"]["p50_ms"] == {"128": 2.0}
    assert run.gemm_peak["fp32_gops"] == 100.0 and run.gemm_peak["int8_gops"] is None  # a pre-ceiling run's key
    assert run.int8_engines == [{"profile": "minilm-l6", "engine": "x86", "p50_ms": 1.0, "cv": 0.02}]
    assert run.latency_mean_ms == {"minilm-l6/fp32/torch": {"128": 2.05}}
    assert run.backend_sessions == {"torch": {"threads": 1}}
    assert run.distill["minilm-l6/fp32"]["p50_ms"] == {"128": 2.0} and run.vision == [] and run.integrity == []
    assert rows.collect([]).gemm_peak is None


def test_sweep_points_read_the_recorded_target_and_skip_chains():
    results = [_static("magnitude-global@0.50", pruning_target_sparsity=0.5, pruning_recovery_epochs=0),
               _static("magnitude-global@0.70:recovery_epochs=1"),  # no facts: from the name
               _static("magnitude-global@0.5+int8", stages="magnitude-global+int8-dynamic",
                       pruning_target_sparsity=0.5),
               _static("heads-grad@0.2")]
    points = rows.sweep_points(rows.rows_from_results(results))
    assert {k: [r["target_sparsity"] for r in v] for k, v in points.items()} == {
        ("minilm-l6", "global", 0): [0.5], ("minilm-l6", "global", 1): [0.7]}
