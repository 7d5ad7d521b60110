"""The report's figures, from synthetic summary rows (no model, no timing)."""
import matplotlib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.report import plots

PNG = b"\x89PNG\r\n\x1a\n"
FOOT = "Machine abc (Test CPU, 2 cores), 2 threads, torch 2.x; run 0001.json"


def _row(profile, variant, p50=10.0, acc=0.85, size=90.0, seqs=(16, 128, 512), batches=(1, 8, 32), **kw):
    return {"profile": profile, "variant": variant, "size_mb": size, "size_sparse_mb": size * 0.7,
            "params": 100, "nonzero_params": 100 - int(100 * kw.get("sparsity", 0)), "accuracy": acc,
            "accuracy_mr": acc and acc - 0.05, "real_weights": acc is not None,
            "p50_ms": {str(s): p50 * s / 128 for s in seqs}, "p90_ms": {str(s): 1.1 * p50 * s / 128 for s in seqs},
            "throughput_sps": {str(b): b * 1e3 / (p50 * (1 + b / 16)) for b in batches},
            "pruning_recovery_epochs": kw.get("recovery", 0)}


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_pareto_front_marks_the_non_dominated_points():
    # (cost, accuracy): (2, .9) beats (3, .85); (1, .8) is cheapest; (2, .9) twice: ties both kept
    assert plots.pareto_front([(1, 0.8), (2, 0.9), (3, 0.85), (2, 0.9), (1.5, 0.7)]) == [0, 1, 3]


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 1)), min_size=1, max_size=12))
def test_pareto_front_is_exactly_the_undominated_set(points):
    front = set(plots.pareto_front(points))
    assert front  # a finite set always has a non-dominated point
    for i, (x, y) in enumerate(points):
        dominated = any(x2 <= x and y2 >= y and (x2, y2) != (x, y) for x2, y2 in points)
        assert (i in front) != dominated


def test_every_figure_renders_from_a_full_run():
    rows = [_row("minilm-l6", "fp32"), _row("minilm-l6", "int8-dynamic", p50=5.0, acc=0.84, size=30.0),
            _row("distilbert-base", "fp32", p50=40.0, acc=None)]
    for s in (0.5, 0.7):
        for method, acc in (("global", 0.83 - s / 10), ("layerwise", 0.82 - s / 10)):
            rows.append(_row("minilm-l6", f"magnitude-{method}@{s}", p50=9.8, acc=acc, sparsity=s))
    figures = plots.render_all({"rows": rows, "machine": {"machine_id": "abc"}, "run": "0001.json"})
    names = [name for _, _, name, _ in figures]
    assert names == ["sparsity-sweep.png", "latency-vs-seq.png", "throughput-vs-batch.png", "pareto.png"]
    assert all(png.startswith(PNG) and len(png) > 10_000 for _, _, _, png in figures)


def test_figures_without_their_data_are_left_out():
    one_seq = [_row("distilbert-base", v, acc=None, seqs=(128,), batches=(32,)) for v in ("fp32", "int8-dynamic")]
    assert plots.latency_vs_seq(one_seq, FOOT) is None  # a line needs two sequence lengths
    assert plots.throughput_vs_batch(one_seq, FOOT) is None
    assert plots.pareto(one_seq, FOOT) is None  # random weights: no accuracy to trade
    assert plots.sparsity_sweep(one_seq, FOOT) is None


@pytest.mark.parametrize("recovered", [False, True])
def test_sweep_with_and_without_recovery(recovered):
    rows = [_row("minilm-l6", "fp32")] + [
        _row("minilm-l6", f"magnitude-global@{s}", acc=0.8, sparsity=s) for s in (0.5, 0.8)]
    if recovered:  # named as the suite names it; the epochs come from the variant name
        rows += [_row("minilm-l6", f"magnitude-global@{s}:recovery_epochs=1", acc=0.83, sparsity=s) for s in (0.5, 0.8)]
    assert plots.sparsity_sweep(rows, FOOT).startswith(PNG)


def test_the_latency_panel_uses_the_paired_ratio_only_when_every_point_has_one():
    ref = {"profile": "p", "variant": "fp32", "backend": "torch", "reference_backend": "torch",
           "p50_ms": {"128": 20.0}, "p50_ratio": {}}
    ov = {"profile": "p", "variant": "int8-static", "backend": "openvino", "reference_backend": "torch",
          "p50_ms": {"128": 5.0}, "p50_ratio": {"128": {"ratio": 0.28, "ci95": [0.27, 0.29], "n": 35}}}
    cost, ci, label = plots._latency_cost([ref, ov])
    assert (cost(ref), cost(ov), ci(ov)) == (1.0, 0.28, [0.27, 0.29]) and "paired ratio" in label
    cost, ci, label = plots._latency_cost([ref, {**ov, "p50_ratio": {}}])  # a block without its pair
    assert (cost(ref), cost(ov), ci(ov)) == (20.0, 5.0, None) and "(ms)" in label
