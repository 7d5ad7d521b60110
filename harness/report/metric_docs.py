"""What each summary-row metric means: ``python -m harness list metrics`` and the README."""
from __future__ import annotations

# name -> (unit, what and how it is measured)
METRIC_DOCS: dict[str, tuple[str, str]] = {
    "size_mb": ("MB (10^6 bytes)", "serialized state dict on disk (safetensors, or weights-only model.pt for packed INT8)"),
    "size_sparse_mb": ("MB", "what the weights would take with every 2-D float tensor in CSR (int32 indices)"),
    "params / nonzero_params / sparsity": ("count, count, fraction", "over the state dict, quantized weights "
                                           "dequantized; sparsity = pruned_zeros / params"),
    "pruned_zeros / quantization_zeros": ("count", "zero weights a pruner set (zero in the float weights before "
                                          "INT8) vs weights INT8 rounding made zero"),
    "flops": ("FLOPs (1 MAC = 2 FLOPs)", "matrix products and convolutions counted by torch.utils.flop_counter at "
                                         "batch 1, seq 128 (elementwise ops not counted); macs_fvcore cross-checks"),
    "p50_ms / p90_ms / p99_ms": ("ms", "batch 1 per sequence length, inference_mode, fixed threads, one worker "
                                       "process per variant, >= 9 shuffled repetitions of 0.4 s blocks; pooled "
                                       "rounds with 95% order-statistic CIs; p99 only from >= 1,000 rounds"),
    "p50_ratio / throughput_ratio / aa_ratio": ("ratio, 95% bootstrap CI", "median over repetitions of the "
                                                "variant's block / torch fp32's block of the same repetition; "
                                                "aa_ratio: fp32 timed twice (A/A control)"),
    "cv / p50_block_cv": ("fraction", "noise: stddev/mean of the rounds; spread of the p50 over 5 blocks of rounds"),
    "throughput_sps / sustained_sps": ("samples/s", "batch / p50 at seq 128 for each batch size (same campaigns "
                                                    "as latency); sustained: all samples / wall time of the "
                                                    "cell's timed blocks"),
    "time_to_first_result_ms": ("ms", "fresh process per sample, from the parent's spawn to the first logits: "
                                      "interpreter_ms + import_ms + load_ms + first_forward_ms; cold_cache_*: the "
                                      "variant's files evicted from the page cache first"),
    "cold_start_ms": ("ms", "load (config, skeleton, weights; ORT session creation) + first forward, imports "
                            "excluded: what a running process pays for one more model"),
    "peak_rss_mb": ("MB", "fresh process: kernel high-water RSS (VmHWM) of load + one forward; without a "
                          "resettable VmHWM a 10 ms sampler, labelled, never ru_maxrss"),
    "accuracy / accuracy_mr": ("fraction, 95% bootstrap CI", "IMDB test split / Rotten Tomatoes (MR) sentences"),
    "eval_loss / agreement / kl_fp32": ("nats, fraction, nats", "cross-entropy; share of predictions equal to "
                                                                "fp32's; mean KL(p_fp32 || p_variant)"),
    "achieved_gflops / peak_fraction": ("GFLOP/s, fraction", "counted FLOPs / p50 at seq 128; divided by this "
                                                             "run's ceiling of the GEMM kernel the variant calls: "
                                                             "sgemm, torch's dynamic-INT8 linear, onnxruntime's "
                                                             "MatMulInteger (suites/test_peak.py); never above 1"),
}
