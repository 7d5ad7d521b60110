"""The `.onnx` file a user brings (issue 18, done-when 2), made the way a user makes one: the quick
path's fine-tuned all-MiniLM-L6-v2 (the model of `quick/`, fine-tuned on rt-sentences.csv's train
split, cached by recipe) exported with `torch.onnx.export` (TorchScript exporter, opset 17,
optimum's input/output names, dynamic batch and sequence axes), its tokenizer files beside it.

`python reports/reference/own-model/export_onnx.py DIR` after `make_inputs.py DIR`; writes
DIR/minilm-rt-onnx/{model.onnx, tokenizer files}."""
import os, shutil, sys, tempfile, warnings
from pathlib import Path
import torch
from harness.cli import quick_config
from harness.models import project
from harness.models.profiles import get_profile

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/real")
folder, data = out / "all-MiniLM-L6-v2", out / "rt-sentences.csv"
name, text = quick_config(folder, data, text_col="sentence", label_col="polarity")
config = Path(tempfile.mkdtemp()) / "quick.toml"
config.write_text(text)
os.environ[project.CONFIG_ENV] = str(config)
model = get_profile(name).load_fp32().eval()  # fine-tunes on the train split, or loads the cached fine-tune

names = ("input_ids", "attention_mask", "token_type_ids")


class Logits(torch.nn.Module):  # what optimum's export gives: (input_ids, attention_mask, token_type_ids) -> logits
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


dest = out / "minilm-rt-onnx"
dest.mkdir(exist_ok=True)
ids = torch.randint(1000, 2000, (2, 16))
example = (ids, torch.ones_like(ids), torch.zeros_like(ids))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the tracer's notes on transformers' Python branches
    torch.onnx.export(Logits(model), example, str(dest / "model.onnx"), dynamo=False, opset_version=17,
                      input_names=list(names), output_names=["logits"],
                      dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}})
for f in folder.iterdir():  # the tokenizer a user ships beside the graph
    if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
        shutil.copy(f, dest / f.name)
print("wrote", dest / "model.onnx")
