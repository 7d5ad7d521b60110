"""Real user inputs for issue 18's runs, from the registry-installed assets only (after
`python -m harness setup`): `python reports/reference/own-model/make_inputs.py DIR`, then copy
edgebench.toml into DIR.  Writes all-MiniLM-L6-v2/ (the PyPI package's files), rt-sentences.csv
(the 4,000 Rotten Tomatoes sentences as a user's CSV), four-class.jsonl (2,000 IMDB reviews + 2,000
RT sentences: source x polarity), fmnist-png/{train,test}/<class>/*.png (6,000 / 2,000
Fashion-MNIST images) and convnext-fmnist-untrained/ (a random-init headless ConvNeXt folder with
its image processor)."""
import csv, json, shutil, sys
from pathlib import Path
import numpy as np
from harness.data import assets, text, images
out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/real")
out.mkdir(parents=True, exist_ok=True)
# 1. the all-MiniLM-L6-v2 files as a user has them (the PyPI package's folder)
m = out / "all-MiniLM-L6-v2"
if not m.exists():
    shutil.copytree(assets.asset_dir("minilm-l6"), m, ignore=shutil.ignore_patterns("verified.json"))
# 1. a CSV the user wrote: Rotten Tomatoes sentences, label names
mr = text.mr_sentences()
with open(out / "rt-sentences.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["sentence", "polarity"])
    for t, y in zip(mr.texts, mr.labels):
        w.writerow([t, "positive" if y else "negative"])
# 3a. a 4-class text set: source (IMDB review / RT sentence) x polarity, as JSONL
imdb = text.imdb_splits(2000, 2, 2, seed=7)["train"]
rng = np.random.default_rng(0)
rows = [{"text": t, "label": ("review-" if True else "") + ("positive" if y else "negative")} for t, y in zip(imdb.texts, imdb.labels)]
rows += [{"text": t, "label": "sentence-" + ("positive" if y else "negative")} for t, y in zip(mr.texts[::2], mr.labels[::2])]
rng.shuffle(rows)
(out / "four-class.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
# 3b. an image folder: Fashion-MNIST as PNG files in class folders (train 6,000 / test 2,000)
from PIL import Image
for split, n in (("train", 6000), ("test", 2000)):
    ds = images.fashion_mnist(split)
    raw = images.read_idx(images.data_dir() / images.FILES[split][0], 2051, (28, 28))
    for i in range(n):
        c = images.CLASSES[int(ds.labels[i])].replace("/", "-").replace(" ", "-")
        d = out / "fmnist-png" / split / c
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(raw[i]).save(d / f"{i:05d}.png")
# 3b. the model a user starts from: ConvNeXt [1,1,3,1]x[32..256], patch 2, 1 channel, no head, seed 42
import torch, transformers
cnx = out / "convnext-fmnist-untrained"
torch.manual_seed(42)
transformers.ConvNextModel(transformers.ConvNextConfig(num_channels=1, patch_size=2, hidden_sizes=[32, 64, 128, 256],
                                                       depths=[1, 1, 3, 1], image_size=28)).save_pretrained(cnx)
(cnx / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.2860], "image_std": [0.3530],
                                                          "rescale_factor": 1 / 255, "do_normalize": True}))
print("wrote", out)
