"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from Debian's ``dataset-fashion-mnist``.

The package installs the original gzipped IDX files under
``/usr/share/datasets/fashion-mnist/`` (``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``):
60,000 train and 10,000 test images, 28×28 uint8 grayscale, 10 balanced
classes (see ``/work/shared/SOURCES.md``).  Debian recompressed the files, so
their md5 differ from upstream; the parser checks the IDX magic numbers and
shapes instead.  ``EDGEBENCH_FMNIST_DIR`` overrides the folder (tests).

Images are returned as float32 tensors (N, 1, 28, 28) normalised with the
train split's mean/std (0.2860 / 0.3530), labels as int64 (N,).
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import torch

from harness.core.errors import HarnessError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
INSTALL_HINT = f"apt-get install {DEBIAN_PACKAGE}"
# (images, labels, size of the real split); the size is documentation, the IDX header is read.
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
# Per-pixel mean/std of the 60,000 training images (pixels scaled to [0, 1]).
MEAN, STD = 0.2860, 0.3530
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def data_dir() -> Path:
    return Path(os.environ.get("EDGEBENCH_FMNIST_DIR", DEFAULT_DIR))


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """Images (N, C, H, W) float32, normalised; labels (N,) int64 in [0, 10)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}: images {tuple(self.images.shape)} and labels "
                             f"{tuple(self.labels.shape)} do not match")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def sha256(self) -> str:
        """Hex sha256 of images and labels in order (pins the data in recipe hashes)."""
        h = hashlib.sha256()
        h.update(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()

    def subset(self, indices, name: str | None = None) -> "ImageDataset":
        ix = torch.as_tensor(list(indices), dtype=torch.int64)
        return ImageDataset(name or self.name, self.images[ix], self.labels[ix])


def _missing(path: Path) -> HarnessError:
    return HarnessError(f"Fashion-MNIST file {path} is missing: install it with "
                        f"'{INSTALL_HINT}' (or run 'python -m harness setup' as root)")


def read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array (N, *item_shape) of a gzipped IDX file, N from its header.

    Raises HarnessError when the file is missing, not gzip, has the wrong magic
    number (2051 images, 2049 labels) or item dimensions, or is truncated.
    """
    if not path.is_file():
        raise _missing(path)
    header = 4 + 4 * (1 + len(item_shape))  # magic + count + each dimension
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise HarnessError(f"{path} is not a readable gzip file ({e}); reinstall with "
                           f"'apt-get install --reinstall {DEBIAN_PACKAGE}'") from None
    if len(raw) < header:
        raise HarnessError(f"{path} is too short for an IDX header; reinstall {DEBIAN_PACKAGE}")
    dims = struct.unpack(f">{2 + len(item_shape)}I", raw[:header])
    count = dims[1]
    if dims[0] != magic or tuple(dims[2:]) != tuple(item_shape):
        raise HarnessError(f"{path} has IDX header {dims}, expected {(magic, 'N', *item_shape)}; "
                           f"reinstall {DEBIAN_PACKAGE}")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    want = count * int(np.prod(item_shape, dtype=np.int64))
    if body.size != want:
        raise HarnessError(f"{path} holds {body.size} bytes of data, expected {want}; "
                           f"reinstall {DEBIAN_PACKAGE}")
    return body.reshape(count, *item_shape)


@functools.lru_cache(maxsize=4)
def _load(split: str, folder: str) -> ImageDataset:
    images_file, labels_file, _ = FILES[split]
    images = read_idx(Path(folder) / images_file, IMAGE_MAGIC, (28, 28))
    labels = read_idx(Path(folder) / labels_file, LABEL_MAGIC, ())
    if len(images) != len(labels):
        raise HarnessError(f"{folder}: {len(images)} {split} images but {len(labels)} labels; "
                           f"reinstall {DEBIAN_PACKAGE}")
    if labels.max() >= len(CLASSES):
        raise HarnessError(f"{folder}/{labels_file} has a label >= {len(CLASSES)}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MEAN) / STD
    return ImageDataset(f"fmnist-{split}", x.contiguous(), torch.from_numpy(labels.astype(np.int64)))


def fashion_mnist(split: str) -> ImageDataset:
    """``"train"`` (60,000) or ``"test"`` (10,000) images, (N, 1, 28, 28) float32 normalised.

    Raises HarnessError naming ``apt-get install dataset-fashion-mnist`` when missing.
    """
    if split not in FILES:
        raise HarnessError(f"unknown Fashion-MNIST split '{split}'; choose train or test")
    return _load(split, str(data_dir()))


def edge_samples(n: int = 20) -> ImageDataset:
    """The study-004 "20 edge samples" smoke set: the first two test images of
    each class (test-file order), a fixed, class-balanced handful that runs in
    milliseconds.  ``n`` must be a multiple of 10."""
    if n < 10 or n % 10:
        raise HarnessError(f"edge sample count {n} must be a positive multiple of 10 (classes)")
    test = fashion_mnist("test")
    per = n // len(CLASSES)
    ix = [int(i) for c in range(len(CLASSES))
          for i in torch.nonzero(test.labels == c).flatten()[:per]]
    return test.subset(ix, name=f"fmnist-edge{n}")


def batches(ds: ImageDataset, batch_size: int, indices=None):
    """Yield ``(pixel_values (B, C, H, W), labels (B,))`` in order (or ``indices`` order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.arange(len(ds)) if indices is None else torch.as_tensor(indices)
    for start in range(0, len(order), batch_size):
        ix = order[start:start + batch_size]
        yield ds.images[ix], ds.labels[ix]


def missing_files() -> list[Path]:
    """The image and label files of every split that are not in :func:`data_dir`."""
    folder = data_dir()
    return [folder / f for files in FILES.values() for f in files[:2] if not (folder / f).is_file()]


def check_installed() -> Path:
    """The data folder; raises HarnessError naming the Debian package when a file is missing."""
    missing = missing_files()
    if missing:
        raise _missing(missing[0])
    return data_dir()


def ensure_installed(log=print) -> Path:
    """The data folder, installing the Debian package first when it is missing
    and we can (root with apt-get on PATH).  Raises HarnessError otherwise."""
    folder = data_dir()
    missing = missing_files()
    if not missing:
        return folder
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0 or folder != DEFAULT_DIR:
        raise _missing(missing[0])
    log(f"installing {DEBIAN_PACKAGE} with apt-get")
    for cmd in ([apt, "update"], [apt, "install", "-y", DEBIAN_PACKAGE]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise HarnessError(f"'{' '.join(cmd)}' failed ({tail[0]}); install {DEBIAN_PACKAGE} by hand")
    if any(not p.is_file() for p in missing):
        raise _missing(missing[0])
    return folder
