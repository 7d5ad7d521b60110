"""The distillation report sections on a synthetic run (no model needed)."""
from harness.report import distill as report_distill
from harness.results.rows import distill_rows


def _r(metric, profile, variant, **extra):
    return {"metric": metric, "profile": profile, "variant": variant, **extra}


def _results(s3_p50=3.0, s3_acc=0.80):
    out = []
    for v, p50, acc, size in (("fp32", 10.0, 0.82, 90.9), ("edgemin-s1", 5.0, 0.81, 69.6),
                              ("edgemin-s2", 4.5, 0.80, 66.0), ("edgemin-s3", s3_p50, s3_acc, 40.0),
                              ("pkd-s1", 8.0, 0.55, 80.0), ("pkd-s2", 8.0, 0.78, 80.0), ("pkd-s3", 4.0, 0.77, 45.0)):
        out += [_r("static", "minilm-l6", v, size_mb=size, params=17_000_000, flops=2e9, sparsity=0.3,
                   linear_sparsity=0.4, heads_kept=29, **{"s1.kd_train_s": 100.0, "s1.task_train_s": 50.0,
                                                         "s2.train_s": 60.0, "s2.pruned_nonzero_after": 0}),
                _r("latency", "minilm-l6", v, seq_len=128, p50_ms=p50),
                _r("quality", "minilm-l6", v, eval_set="imdb-test", accuracy=acc),
                _r("quality", "minilm-l6", v, eval_set="mr", accuracy=acc - 0.05),
                _r("triple_loss", "minilm-l6", v, distill_eval_loss=0.01, distill_temperature=2.0,
                   cosine_eval_loss=None if v == "pkd-s3" else 0.1, mlm_eval_loss=None, n=512)]
    out += [_r("static", "distilbert-base", "fp32", size_mb=267.8, params=66_955_010, flops=11.0e9),
            _r("static", "minilm-l12-h384", "fp32", size_mb=133.9, params=33_360_770, flops=5.5e9)]
    return out


def test_sections_render_every_table():
    text = "\n".join(report_distill.render(distill_rows(_results())))
    for heading in ("EdgeMIN stages", "study 003", "Triple-loss quality", "Architecture-exact ratios"):
        assert heading in text
    assert "**met** — 3.33× faster, IMDB +2.00 points below" in text
    assert "KD 100 s + task FT 50 s" in text
    assert "n/a (hidden sizes differ)" in text and "n/a (classifier)" in text
    # 267.8 / 133.9 = 2.00x vs the claimed 1.96x: +2%; params 2.01x vs 2.8x: -28%
    flat = " ".join(text.split())
    assert "| 2.00× | 1.96× | +2% | 2.01× | 2.80× | -28% | 2.00× | 2.60× | -23% |" in flat


def test_target_not_met_and_empty_run():
    text = "\n".join(report_distill.render(distill_rows(_results(s3_p50=5.0, s3_acc=0.70))))
    assert "**not met** — 2.00× faster, IMDB +12.00 points below" in text
    assert report_distill.render(distill_rows([_r("static", "minilm-l6", "fp32", size_mb=1.0)])) == []


def test_each_recipe_gets_its_own_rows_and_verdict():
    extra = [_r("static", "minilm-l6", "edgemin-s3@full", size_mb=40.0, params=17_000_000, flops=2e9),
             _r("latency", "minilm-l6", "edgemin-s3@full", seq_len=128, p50_ms=2.5),
             _r("quality", "minilm-l6", "edgemin-s3@full", eval_set="imdb-test", accuracy=0.815)]
    text = "\n".join(report_distill.render(distill_rows(_results() + extra)))
    assert "Target (edgemin-s3 ≥ 3× faster" in text and "Target (edgemin-s3@full ≥ 3× faster" in text
    assert "**met** — 4.00× faster, IMDB +0.50 points below" in text
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| edgemin")]
    assert rows == ["edgemin-s1", "edgemin-s2", "edgemin-s3", "edgemin-s3@full"]
