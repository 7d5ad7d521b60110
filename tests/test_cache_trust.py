"""The variant cache under corruption, concurrency and hostile files; deterministic builds."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

import compressors
from harness.backends import variants
from harness.core.errors import HarnessError
from harness.core.paths import ROOT
from harness.models.inference import predict_logits
from harness.models.profiles import PROFILES


def _flip_byte(path, where=-10):
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_one_byte_corruption_is_rebuilt_or_refused_never_used(tmp_path, tiny_model):
    builds, logs = [], []

    def load():
        builds.append(1)
        return tiny_model

    d = variants.get_or_build("t", "fp32", "src", load, root=tmp_path, log=logs.append)
    good = (d / "model.safetensors").read_bytes()
    _flip_byte(d / "model.safetensors")
    # --no-rebuild: a clear error naming the corrupt entry, and the entry is left alone for inspection.
    with pytest.raises(HarnessError, match=r"corrupt.*--no-rebuild"):
        variants.get_or_build("t", "fp32", "src", load, root=tmp_path, log=logs.append, rebuild=False)
    assert len(builds) == 1 and (d / "model.safetensors").read_bytes() != good
    # Default: rebuilt, one log line, and the rebuilt weights are the original bytes again.
    d2 = variants.get_or_build("t", "fp32", "src", load, root=tmp_path, log=logs.append)
    assert d2 == d and len(builds) == 2 and (d / "model.safetensors").read_bytes() == good
    assert sum("rebuilding t/fp32" in line for line in logs) == 1
    # A corrupt variant.json is refused the same way.
    (d / "variant.json").write_text("{not json")
    with pytest.raises(HarnessError, match="unreadable"):
        variants.get_or_build("t", "fp32", "src", load, root=tmp_path, log=logs.append, rebuild=False)


def test_a_crafted_pickle_is_refused_and_runs_no_code(tmp_path, tiny_model):
    """model.pt whose unpickling would call exec(): plain torch.load runs it, our loader refuses it."""
    marker = tmp_path / "pwned"
    info = variants.save_variant(compressors.build("int8-dynamic", tiny_model), tmp_path / "v",
                                 profile="t", variant="int8-dynamic", source_key="k")

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('code ran')",)

    weights = tmp_path / "v" / "model.pt"
    torch.save({"distilbert.embeddings.word_embeddings.weight": Payload()}, weights)
    # The attacker controls variant.json too, so the checksum matches: the loader itself must refuse.
    meta = json.loads((tmp_path / "v" / "variant.json").read_text())
    meta["weights_sha256"] = variants.atomic.sha256_file(weights)
    (tmp_path / "v" / "variant.json").write_text(json.dumps(meta))
    assert info.weights_file == "model.pt"

    with pytest.raises(HarnessError, match="cannot load .*model.pt"):
        variants.load_variant(tmp_path / "v")
    assert not marker.exists()
    torch.load(weights, weights_only=False)  # what an unsafe loader would do
    assert marker.read_text() == "code ran"


_BUILDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from harness.backends import variants
    from harness.models.profiles import PROFILES

    root, log = Path(sys.argv[1]), Path(sys.argv[2])

    def load():
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(1.0)  # hold the build open so the other process arrives mid-build
        return PROFILES["tiny-random"].load_fp32()

    # Barrier: both processes enter get_or_build together, so without the lock both would build.
    (log.parent / f"ready-{os.getpid()}").touch()
    while len(list(log.parent.glob("ready-*"))) < 2:
        time.sleep(0.02)
    out = variants.get_or_build("tiny-random", "int8-dynamic", "src", load, root=root, log=lambda m: None)
    variants.load_variant(out)
    print(out)
""")


def test_two_concurrent_runs_sharing_a_cache_build_once_and_do_not_corrupt_it(tmp_path):
    log = tmp_path / "builds.log"
    procs = [subprocess.Popen([sys.executable, "-c", _BUILDER, str(tmp_path / "cache"), str(log)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert outs[0][0].strip() == outs[1][0].strip()
    assert len(log.read_text().split()) == 1  # the second process waited on the lock, then reused the entry
    folder = tmp_path / "cache" / "tiny-random"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no stray temp folders
    variants.read_info(next(p for p in folder.iterdir() if p.is_dir()))


def _accuracy(model, batches):
    logits = predict_logits(model, batches)
    labels = torch.cat([b[2] for b in batches])
    return (logits.argmax(-1) == labels).float().mean().item(), logits


@pytest.mark.parametrize("name, options", [
    ("heads-grad@0.5", {}),                               # data-dependent scoring
    ("magnitude-global@0.5", {"recovery_epochs": 1}),     # pruning + seeded recovery fine-tuning
    ("int8-dynamic", {}),                                 # packed INT8, saved as a weights-only pickle
])
def test_two_builds_of_one_recipe_with_seed_42_are_identical(tmp_path, tiny_context, one_thread, name, options):
    context = compressors.CompressionContext(tiny_context.train_batches, seed=42)
    batches = list(context.train_batches())
    results = []
    for run in ("a", "b"):
        model = compressors.build(name, PROFILES["tiny-random"].load_fp32(), context=context, **options)
        info = variants.save_variant(model, tmp_path / run, profile="tiny-random", variant=name, source_key="k")
        loaded, _ = variants.load_variant(tmp_path / run)
        results.append((info.weights_sha256, *_accuracy(loaded, batches)))
    (sha_a, acc_a, logits_a), (sha_b, acc_b, logits_b) = results
    assert sha_a == sha_b
    assert acc_a == acc_b and torch.equal(logits_a, logits_b)
