"""A user's own data, from files on disk (issue 18): text as CSV, TSV, JSONL, a folder of
class-named subfolders of ``.txt`` files, or a ``datasets.load_from_disk`` folder; images as a
folder of class-named subfolders of image files (:class:`ImageFiles`, decoded by :func:`decode_images`).
Unlabelled text (``label=None``: a masked-LM profile's) may also be a ``.txt`` file, one text per line.

:func:`load_splits` turns a :class:`TextSource` into ``{"train", "validation", "test"}``
:class:`~harness.data.text.TextDataset` splits -- either the named files of ``files`` or one
file cut into a seeded, stratified split after exact duplicates are dropped (a text in two
splits would flatter accuracy).  Labels are class names (``"positive"``) or integer ids; the
label map (names in id order) is ``labels`` when given, else the sorted names found (integer
ids: ``0..max``).  Every problem is a one-line :class:`HarnessError` naming the file, the
column or key and the fix.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.core.errors import HarnessError
from harness.data.text import TextDataset

SPLITS = ("train", "validation", "test")
FORMATS = ("csv", "tsv", "jsonl", "folder", "arrow")
_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
UNLABELLED = "unlabelled"  # the one class of a source read with label=None


@dataclasses.dataclass(frozen=True)
class TextSource:
    """Where a labelled text set lives and how to read it.

    ``path``: one file or folder to split (``test``/``validation`` fractions, ``seed``);
    ``files``: named splits instead (``{"train": path, "test": path}``, ``validation`` optional).
    ``text``/``label``/``text_pair``: column (or JSON key) names; ``text_pair`` set makes a
    sentence-pair task; ``label=None`` reads the texts alone (every example in one class,
    :data:`UNLABELLED`), as a masked-LM profile does.  ``labels``: the label map, class names in id order (None: inferred).
    ``where``: how errors name this source (e.g. ``edgebench.toml [data.reviews]``).
    """

    path: Path | None = None
    files: dict[str, Path] | None = None
    text: str = "text"
    label: str | None = "label"
    text_pair: str | None = None
    labels: tuple[str, ...] | None = None
    test: float = 0.2
    validation: float = 0.1
    seed: int = 42
    where: str = "data"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.files is None):
            raise HarnessError(f"{self.where}: give exactly one of 'path' (one file to split) or 'files' "
                               f"(named splits, e.g. {{train = \"train.csv\", test = \"test.csv\"}})")
        if self.files is not None:
            unknown = set(self.files) - set(SPLITS)
            if unknown or "test" not in self.files:
                raise HarnessError(f"{self.where}: 'files' takes the splits {', '.join(SPLITS)} with 'test' "
                                   f"required; got {', '.join(sorted(self.files))}")
        for name in ("test", "validation"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise HarnessError(f"{self.where}: split fraction '{name}' = {value!r} must be in [0, 1)")
        if self.path is not None and self.test <= 0:
            raise HarnessError(f"{self.where}: 'test' must be > 0 to measure accuracy on a split of {self.path}")
        if self.test + self.validation >= 1:
            raise HarnessError(f"{self.where}: test {self.test} + validation {self.validation} leave no "
                               f"training examples; lower them")
        if self.labels is not None and (len(self.labels) < 2 or len(set(self.labels)) != len(self.labels)):
            raise HarnessError(f"{self.where}: 'labels' must list at least 2 distinct class names, "
                               f"got {list(self.labels)}")

    def key(self) -> dict[str, Any]:
        """What identifies the data and their reading (for recipe hashes: the content is hashed too)."""
        return {"text": self.text, "label": self.label, "text_pair": self.text_pair,
                "labels": list(self.labels) if self.labels else None, "test": self.test,
                "validation": self.validation, "seed": self.seed}


def detect_format(path: Path) -> str:
    """``csv``/``tsv``/``jsonl``/``txt`` from the suffix, ``arrow`` for a ``datasets.save_to_disk`` folder,
    ``folder`` for class-named subfolders.  Raises HarnessError for anything else."""
    if path.is_dir():
        return "arrow" if (path / "dataset_info.json").is_file() or (path / "state.json").is_file() else "folder"
    fmt = _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise HarnessError(f"{path}: unknown data format '{path.suffix}'; use .csv, .tsv, .jsonl, a folder of "
                           f"class-named subfolders of .txt files, or a datasets.save_to_disk folder (a .txt "
                           f"file of one text per line for a masked-lm profile)")
    return fmt


Row = tuple[str, str | None, str]  # (text, second text or None, label as written)


def _table_rows(path: Path, source: TextSource, delimiter: str) -> list[Row]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            columns = reader.fieldnames or []
            _check_columns(path, source, columns)
            return [_row(path, source, r, i + 2) for i, r in enumerate(reader)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise HarnessError(f"{path} cannot be read as {'TSV' if delimiter == chr(9) else 'CSV'} ({e}); "
                           f"save it as UTF-8 with a header row") from None


def _jsonl_rows(path: Path, source: TextSource) -> list[Row]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise HarnessError(f"{path} is not UTF-8 ({e}); save it as UTF-8") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise HarnessError(f"{path} line {i + 1} is not JSON ({e}); one object per line") from None
        if not isinstance(record, dict):
            raise HarnessError(f"{path} line {i + 1} is not a JSON object; one {{\"{source.text}\": …, "
                               f"\"{source.label}\": …}} per line")
        if not rows:
            _check_columns(path, source, list(record))
        rows.append(_row(path, source, record, i + 1))
    return rows


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _class_folders(path: Path) -> list[Path]:
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise HarnessError(f"{path}: a class-folder data set needs at least 2 subfolders (one per class, "
                           f"holding .txt or image files), found {len(classes)}")
    return classes


def is_image_folder(path: Path) -> bool:
    """True for a folder whose class subfolders hold image files (not ``.txt``)."""
    return path.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for c in path.iterdir() if c.is_dir()
                                 for f in c.iterdir())


def _folder_rows(path: Path, source: TextSource, suffixes: tuple[str, ...] = (".txt",)) -> list[Row]:
    """``.txt`` texts, or (``suffixes`` = :data:`IMAGE_SUFFIXES`) image paths as the "text"."""
    rows: list[Row] = []
    for folder in _class_folders(path):
        found = sorted(f for f in folder.iterdir() if f.suffix.lower() in suffixes)
        if not found:
            raise HarnessError(f"{folder}: class '{folder.name}' is empty (no {'/'.join(suffixes)} files); add "
                               f"examples or remove the folder")
        label = UNLABELLED if source.label is None else folder.name
        for f in found:
            if suffixes != (".txt",):
                rows.append((str(f), None, label))
                continue
            try:
                rows.append((f.read_text(encoding="utf-8").strip(), None, label))
            except UnicodeDecodeError as e:
                raise HarnessError(f"{f} is not UTF-8 ({e}); save it as UTF-8") from None
    if source.text_pair:
        raise HarnessError(f"{path}: a class folder holds single examples; 'text_pair' needs a CSV/TSV/JSONL file")
    return rows


def _arrow_rows(path: Path, source: TextSource) -> list[Row]:
    try:
        import datasets  # optional: only for a datasets.save_to_disk folder
    except ImportError:
        raise HarnessError(f"{path} is a datasets.save_to_disk folder but the 'datasets' package is not "
                           f"installed; pip install datasets, or export it to JSONL") from None
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        raise HarnessError(f"{path} holds several splits ({', '.join(ds)}); name them in 'files' "
                           f"(e.g. files = {{train = \"{path}/train\", test = \"{path}/test\"}})")
    _check_columns(path, source, list(ds.column_names))
    if source.label is None:
        return [_row(path, source, r, i) for i, r in enumerate(ds)]
    feature = ds.features.get(source.label)
    names = getattr(feature, "names", None)  # a ClassLabel column stores ids; map them back to names
    return [_row(path, source, {**r, source.label: names[r[source.label]] if names else r[source.label]}, i)
            for i, r in enumerate(ds)]


def _line_rows(path: Path, source: TextSource) -> list[Row]:
    """A ``.txt`` file's non-empty lines as unlabelled texts (label=None sources only)."""
    if source.label is not None:
        raise HarnessError(f"{path}: a .txt file holds texts without labels; a classification profile needs a "
                           f".csv/.tsv/.jsonl file or class folders (a .txt file serves a masked-lm profile)")
    if source.text_pair:
        raise HarnessError(f"{path}: a .txt file holds one text per line; 'text_pair' needs a CSV/TSV/JSONL file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise HarnessError(f"{path} is not UTF-8 ({e}); save it as UTF-8") from None
    return [(line.strip(), None, UNLABELLED) for line in lines if line.strip()]


def _check_columns(path: Path, source: TextSource, columns: list[str]) -> None:
    for key, column in (("text", source.text), ("label", source.label), ("text_pair", source.text_pair)):
        if column is not None and column not in columns:
            raise HarnessError(f"{path} has no column '{column}' (columns: {', '.join(columns) or 'none'}); "
                               f"set {key} = \"<column>\" in {source.where}")


def _row(path: Path, source: TextSource, record: dict[str, Any], line: int) -> Row:
    text = record.get(source.text)
    label = UNLABELLED if source.label is None else record.get(source.label)
    pair = record.get(source.text_pair) if source.text_pair else None
    if not isinstance(text, str) or not text.strip():
        raise HarnessError(f"{path} row {line}: empty or missing '{source.text}'; fill it or drop the row")
    if source.text_pair and (not isinstance(pair, str) or not pair.strip()):
        raise HarnessError(f"{path} row {line}: empty or missing '{source.text_pair}'; fill it or drop the row")
    if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (bool, float, list, dict)):
        raise HarnessError(f"{path} row {line}: label '{source.label}' is {label!r}; give a class name or an "
                           f"integer id")
    return text.strip(), pair.strip() if isinstance(pair, str) else None, str(label).strip()


def read_rows(path: Path, source: TextSource) -> list[Row]:
    """Every example of ``path`` as ``(text, second text or None, label as written)``, in file order.

    Raises:
        HarnessError: missing path, unknown format, missing column, empty text or label.
    """
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"{source.where}: {path} does not exist; fix the path (relative paths are "
                           f"relative to the config file)")
    fmt = detect_format(path)
    rows = {"csv": lambda: _table_rows(path, source, ","), "tsv": lambda: _table_rows(path, source, "\t"),
            "jsonl": lambda: _jsonl_rows(path, source), "txt": lambda: _line_rows(path, source),
            "folder": lambda: _folder_rows(path, source, IMAGE_SUFFIXES if is_image_folder(path) else (".txt",)),
            "arrow": lambda: _arrow_rows(path, source)}[fmt]()
    if not rows:
        raise HarnessError(f"{path} holds no examples; add rows below the header")
    return rows


def label_map(found: Iterable[str], declared: tuple[str, ...] | None, where: str) -> tuple[str, ...]:
    """Class names in id order.  ``declared`` wins (every label found must be a declared name or
    a valid integer id); otherwise integer labels give ``("0", …, str(max))`` and names their
    sorted order.  Raises HarnessError for a label outside the map."""
    found = sorted(set(found))
    ints = all(f.lstrip("-").isdigit() for f in found)
    if declared is None:
        if ints:
            top = max(int(f) for f in found)
            if min(int(f) for f in found) < 0:
                raise HarnessError(f"{where}: integer labels must be >= 0, got {min(found, key=int)}")
            return tuple(str(i) for i in range(max(top + 1, 2)))
        if len(found) < 2:
            raise HarnessError(f"{where}: only one class ({found[0]!r}) in the data; a classifier needs two")
        return tuple(found)
    unknown = [f for f in found if f not in declared and not (f.isdigit() and int(f) < len(declared))]
    if unknown:
        raise HarnessError(f"{where}: label(s) {', '.join(map(repr, unknown[:5]))} are not in labels = "
                           f"{list(declared)}; add them or fix the data")
    return declared


def _names(found: Iterable[str], source: TextSource) -> tuple[str, ...]:
    """The label map of a source's rows; one class for unlabelled text."""
    return (UNLABELLED,) if source.label is None else label_map(found, source.labels, source.where)


def _ids(rows: list[Row], names: tuple[str, ...]) -> list[int]:
    index = {n: i for i, n in enumerate(names)}
    return [index[label] if label in index else int(label) for _, _, label in rows]


def _dedup(rows: list[Row], images: bool = False) -> list[Row]:
    """Exact duplicate examples (text and second text; an image's bytes) dropped, the first kept: a
    duplicate in two splits would be scored on what the model was trained on."""
    seen: set[Any] = set()
    out = []
    for row in rows:
        key = hashlib.sha256(Path(row[0]).read_bytes()).hexdigest() if images else row[:2]
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def stratified_split(labels: list[int], fractions: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Indices of each split, per class in proportion (``round(n_class * fraction)``, the rest to
    ``train``), shuffled by ``numpy.random.default_rng(seed)``: the same on every machine."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {name: [] for name in ("train", *fractions)}
    for c in sorted(set(labels)):
        ix = rng.permutation([i for i, y in enumerate(labels) if y == c]).tolist()
        start = 0
        for name, fraction in fractions.items():
            n = int(round(len(ix) * fraction))
            out[name] += ix[start:start + n]
            start += n
        out["train"] += ix[start:]
    return {name: rng.permutation(ix).tolist() if ix else [] for name, ix in out.items()}


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """Image files with class ids (``labels[i]`` indexes ``label_names``), in a fixed order; decoded
    on use (:func:`decode_images`), at the size the model is measured at."""

    name: str
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def sha256(self) -> str:
        """Hex sha256 of the files' bytes and labels in order (pins the data in recipe hashes)."""
        h = hashlib.sha256()
        for path, label in zip(self.paths, self.labels):
            h.update(f"{label}:".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()


def decode_images(ds: ImageFiles, size: int, channels: int, mean: tuple[float, ...] | None = None,
                  std: tuple[float, ...] | None = None, rescale: float = 1 / 255) -> "Any":
    """``(pixel_values (N, channels, size, size) float32, labels (N,) int64)`` of ``ds``: each file
    converted to gray (1 channel) or RGB (3), resized bilinearly to ``size`` × ``size`` (no crop),
    scaled by ``rescale`` and, given ``mean``/``std`` (a model's image processor), normalised.

    Raises:
        HarnessError: a file that is not an image, or a channel count other than 1 or 3.
    """
    import torch
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise HarnessError(f"the model takes {channels} channels; image folders can feed 1 (gray) or 3 (RGB)")
    out = np.empty((len(ds), channels, size, size), dtype=np.float32)
    for i, path in enumerate(ds.paths):
        try:
            with Image.open(path) as im:
                im = im.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.float32)
        except (OSError, UnidentifiedImageError) as e:
            raise HarnessError(f"{path} is not a readable image ({e}); remove or replace it") from None
        out[i] = (arr[None] if channels == 1 else arr.transpose(2, 0, 1)) * rescale
    if mean is not None and std is not None:
        m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        out = (out - m[:channels]) / s[:channels]
    return torch.from_numpy(out), torch.tensor(ds.labels, dtype=torch.int64)


Dataset = TextDataset | ImageFiles


def _dataset(name: str, rows: list[Row], names: tuple[str, ...], indices: list[int] | None = None,
             images: bool = False) -> Dataset:
    rows = rows if indices is None else [rows[i] for i in indices]
    if images:
        return ImageFiles(name, tuple(Path(r[0]) for r in rows), tuple(_ids(rows, names)), names)
    pairs = None if rows and rows[0][1] is None else tuple(r[1] or "" for r in rows)
    return TextDataset(name, tuple(r[0] for r in rows), tuple(_ids(rows, names)), names, pairs)


def load_splits(name: str, source: TextSource) -> dict[str, Dataset]:
    """``{"train", "validation", "test"}`` splits of ``source`` (:class:`TextDataset`, or
    :class:`ImageFiles` for an image folder), each named ``<name>-<split>``
    (``validation`` may be empty; ``train`` is empty when ``files`` names no train file).

    Raises:
        HarnessError: a bad file (see :func:`read_rows`), a label outside the map, a class
            with no test example, or a test example also in the training split.
    """
    if source.files is not None:
        images = is_image_folder(source.files["test"])
        per_split = {split: _dedup(read_rows(path, source), images) for split, path in source.files.items()}
        names = _names((r[2] for rows in per_split.values() for r in rows), source)
        out = {split: _dataset(f"{name}-{split}", per_split.get(split, []), names, images=images) for split in SPLITS}
        if images:
            leaked = ({hashlib.sha256(p.read_bytes()).digest() for p in out["test"].paths}
                      & {hashlib.sha256(p.read_bytes()).digest() for p in out["train"].paths})
        else:
            leaked = set(zip(out["test"].texts, out["test"].text_pairs or [None] * len(out["test"]))) & set(
                zip(out["train"].texts, out["train"].text_pairs or [None] * len(out["train"])))
        if leaked:
            raise HarnessError(f"{source.where}: {len(leaked)} test example(s) also appear in the train file "
                               f"{source.files.get('train')}; remove them from one of the files")
    else:
        images = is_image_folder(source.path)
        rows = _dedup(read_rows(source.path, source), images)
        names = _names((r[2] for r in rows), source)
        labels = _ids(rows, names)
        parts = stratified_split(labels, {"test": source.test, "validation": source.validation}, source.seed)
        out = {split: _dataset(f"{name}-{split}", rows, names, parts[split], images) for split in SPLITS}
    counts = Counter(out["test"].labels)
    empty = [names[c] for c in range(len(names)) if counts[c] == 0]
    if empty:
        raise HarnessError(f"{source.where}: class(es) {', '.join(map(repr, empty))} have no test example; "
                           f"add examples or drop them from labels")
    return out
