"""Atomic writes of HDF5 and JSON artifacts, and the checks a reader makes before use.

Every artifact is written to a temporary file beside its final path and renamed into place
only when complete, so an interrupted job never leaves a file that looks finished.
Every HDF5 file carries: `kind`, `vicokd_version`, `config` (the JSON of the config section
that made it), `created` (a stamp unique to each write) and, per dataset, `axes` (the names of
its dimensions). `artifact_identity` tells one write of an artifact from another (a training
checkpoint resumes only onto the same inputs).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from . import __version__
from .errors import VicokdError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    Temporary files of earlier writers that were killed (their process is gone) are removed
    first. A full disk or a read-only folder is a one-line VicokdError naming `path`."""
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VicokdError(f"{final.parent}: cannot create the folder ({exc.strerror})") from None
    remove_stale_temporaries(final)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    try:
        yield tmp
        if tmp.is_dir() and final.is_dir():
            shutil.rmtree(final)             # a folder is not replaced by a rename
        os.replace(tmp, final)
    except Exception as exc:
        fault = write_fault(final.parent, exc)
        if fault:
            raise VicokdError(f"{final}: cannot be written: {fault}") from None
        raise
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """Delete a temporary file or folder (a folder is what a directory output is written as)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(final: Path) -> None:
    """Delete `.{name}.tmp<pid>` files beside `final` whose writer is no longer running (a
    killed job leaves its temporary file; Snakemake does not know it)."""
    for old in final.parent.glob(f".{final.name}.tmp*"):
        pid = old.name[len(f".{final.name}.tmp"):]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(old)


# Free space under which a failed write is put down to a full disk.
LOW_SPACE_BYTES = 1 << 20
WRITE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system"}


def write_fault(folder: Path, exc: Exception) -> str | None:
    """Why writing into `folder` failed, when the folder is at fault (full disk, read-only,
    not writable), else None. Writers fail in many ways (h5py's OSError without a file name,
    torch.save's RuntimeError), so the folder itself is looked at too."""
    code = getattr(exc, "errno", None)
    if code in WRITE_ERRNOS:
        return WRITE_ERRNOS[code]
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return WRITE_ERRNOS[errno.EROFS]
    if st.f_bavail * st.f_frsize < LOW_SPACE_BYTES:
        return f"{WRITE_ERRNOS[errno.ENOSPC]} ({st.f_bavail * st.f_frsize // 1024} KiB free)"
    if code in (errno.EACCES, errno.EPERM) and not os.access(folder, os.W_OK):
        return "permission denied"
    return None


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why files cannot be created in `folder` (or, when it does not exist yet, in the nearest
    folder above it that does, where it would be made), or None when they can: a file is
    created there and removed."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, name = tempfile.mkstemp(prefix=".vicokd-write-check", dir=folder)
    except OSError as exc:
        return write_fault(folder, exc) or exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, kind: str, config: dict | None = None,
              **attrs) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing; it appears at `path` only once closed without error."""
    with atomic_path(path) as tmp:
        f = h5py.File(tmp, "w")
        try:
            f.attrs["kind"] = kind
            f.attrs["vicokd_version"] = __version__
            f.attrs["config"] = json.dumps(config or {}, sort_keys=True)
            f.attrs["created"] = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {uuid.uuid4().hex}"
            for key, value in attrs.items():
                f.attrs[key] = value
            yield f
            f.close()                    # the last flush may fail too (a full disk)
        except BaseException:
            close_discarding(f)
            raise


def close_discarding(f: h5py.File) -> None:
    """Close an HDF5 file whose contents are thrown away, without error.

    HDF5 flushes its caches when a file (or any dataset of it) is closed. After a failed write
    (a full disk) that flush fails again for every open object: h5py prints each failure
    ("Exception ignored in ... __dealloc__") and the process could crash at exit on the file
    HDF5 could not close. Pointing the file's descriptor at /dev/null first lets every flush
    succeed, writing nothing, so the file closes and the caller removes it."""
    if not f.id.valid:
        return
    try:
        fd = f.id.get_vfd_handle()      # the POSIX descriptor of the default (sec2) driver
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except Exception:                    # another driver: close as is
        pass
    with contextlib.suppress(Exception):
        f.close()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write JSON atomically (indented, keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file, with a one-line error naming the file when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise VicokdError(f"{p}: file not found")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        # json's messages may end in "at" ("Invalid control character at"): not "at at line"
        reason = exc.msg.removesuffix(" at")
        raise VicokdError(f"{p}: not valid JSON ({reason} at line {exc.lineno}, column {exc.colno})") from None


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_dataset(group: h5py.Group, name: str, data: np.ndarray, axes: Sequence[str],
                  **kwargs) -> h5py.Dataset:
    """Create a dataset and record the names of its axes (e.g. "V,T,H,W,3")."""
    if len(axes) != np.ndim(data):
        raise ValueError(f"{name}: {len(axes)} axis names for {np.ndim(data)} dimensions")
    ds = group.create_dataset(name, data=data, **kwargs)
    ds.attrs["axes"] = ",".join(axes)
    # Written now, not when HDF5 evicts its chunk cache: a full disk fails here, as an
    # exception, rather than later in a destructor that can only print it.
    ds.id.flush()
    return ds


def open_h5(path: str | os.PathLike, kind: str) -> h5py.File:
    """Open an artifact for reading, checking that it is the expected kind."""
    p = Path(path)
    if not p.is_file():
        raise VicokdError(f"{p}: file not found")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise VicokdError(f"{p}: not a readable HDF5 file ({exc})") from None
    found = f.attrs.get("kind")
    if found != kind:
        f.close()
        article = "an" if kind[:1] in "aeiou" else "a"
        raise VicokdError(f"{p}: expected {article} '{kind}' file, found kind={found!r}")
    return f


def check_dataset(path, ds: h5py.Dataset, ndim: int, dtype, fixed: dict[int, int] | None = None):
    """Raise a one-line error unless `ds` has `ndim` dimensions, `dtype`, and the fixed sizes."""
    where = f"{path}:{ds.name}"
    if ds.ndim != ndim:
        raise VicokdError(f"{where}: expected {ndim} dimensions, found shape {ds.shape}")
    if ds.dtype != np.dtype(dtype):
        raise VicokdError(f"{where}: expected dtype {np.dtype(dtype)}, found {ds.dtype}")
    for axis, size in (fixed or {}).items():
        if ds.shape[axis] != size:
            raise VicokdError(f"{where}: expected size {size} on axis {axis}, found shape {ds.shape}")


def artifact_identity(path: str | os.PathLike) -> str:
    """What tells this write of an artifact from any other: an HDF5 file's kind, config and
    `created` stamp (size and modification time for files older than the stamp); the SHA-256
    of any other file (split.json, a teacher's model.pt)."""
    p = Path(path)
    if h5py.is_hdf5(p):
        with h5py.File(p, "r") as f:
            stamp = f.attrs.get("created")
            if stamp is None:
                st = p.stat()
                stamp = f"size {st.st_size} mtime {st.st_mtime_ns}"
            return f"{f.attrs.get('kind')} {f.attrs.get('config')} {stamp}"
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256 {digest.hexdigest()}"

