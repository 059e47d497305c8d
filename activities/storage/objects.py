"""The disk side of the storage endpoint: where a bucket's bytes live.

Layout under the storage root (``Settings.storage_root``, ``<data_dir>/storage`` by default)::

    <bucket>/data/<name>             one file per stored object version, ``name`` generated (32 hex)
    <bucket>/data/.tmp-<name>        an upload being received
    <bucket>/uploads/<upload id>/    a multipart upload in progress (``multipart.py``)

Keys never become paths: an object's row in the catalog (``catalog.py``, the ``StorageObject`` table)
names its data file. So no key can reach outside its bucket, a key and a longer key below it
(``a`` and ``a/b``) both fit, and listing pages come from an index rather than a directory walk. An
upload is received into a temporary file in the data directory and renamed into place (no fsync:
the rename only has to be atomic, not durable across a power cut); an overwrite writes a new file,
switches the row, then deletes the old file, so a reader that opened the old one reads it whole.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from activities.storage.keys import check_bucket

READ_BATCH = 1024 * 1024


def bucket_dir(root: Path, bucket: str) -> Path:
    return Path(root) / check_bucket(bucket)


def data_dir(root: Path, bucket: str) -> Path:
    return bucket_dir(root, bucket) / "data"


def new_name() -> str:
    return secrets.token_hex(16)


def data_path(root: Path, bucket: str, name: str) -> Path:
    if len(name) != 32 or any(c not in "0123456789abcdef" for c in name):
        raise ValueError(f"not a data file name: {name!r}")
    return data_dir(root, bucket) / name


def temp_path(root: Path, bucket: str) -> tuple[Path, str]:
    """A fresh temporary file path in the bucket's data directory (created if needed) and the name the
    finished file will get."""
    directory = data_dir(root, bucket)
    directory.mkdir(parents=True, exist_ok=True)
    name = new_name()
    return directory / f".tmp-{name}", name


def commit(temp: Path, final: Path) -> None:
    os.replace(temp, final)


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def read_range(handle, start: int, length: int):
    """Blocks of ``length`` bytes from ``start`` of an open file (a generator run in a worker thread)."""
    handle.seek(start)
    left = length
    while left > 0:
        block = handle.read(min(READ_BATCH, left))
        if not block:
            return
        left -= len(block)
        yield block


def concatenate(sources: list[Path], dest: Path) -> None:
    """Copy ``sources`` one after another into the new file ``dest`` (in the kernel where it can)."""
    with open(dest, "xb") as out:
        for source in sources:
            with open(source, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                offset = 0
                try:
                    while offset < size:
                        copied = os.copy_file_range(src.fileno(), out.fileno(), size - offset, offset)
                        if copied == 0:
                            break
                        offset += copied
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    src.seek(offset)
                    out.seek(0, os.SEEK_END)
                    shutil.copyfileobj(src, out, READ_BATCH)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
