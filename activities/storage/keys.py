"""Bucket names and object keys the endpoint accepts.

A bucket is a job's: its name is the job id (``job-`` and 24 hex digits, a valid S3 bucket name).
Object keys never become file names (``objects.py`` stores bytes under generated names), but a key
is also what ``aws s3 sync`` turns into a path on the downloader's disk, so keys that could climb out
of a directory there are refused: empty, over 1024 bytes of UTF-8, starting with ``/``, containing
NUL or another control character, a backslash, or a ``.``/``..`` segment, or an empty segment
(``a//b``; a single trailing ``/``, the console-style folder marker, is allowed).
"""

from __future__ import annotations

import re

from activities.errors import StorageError

BUCKET = re.compile(r"^job-[0-9a-f]{24}$")
MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket(name: str) -> str:
    """The name, or NoSuchBucket for anything that cannot be a job's bucket."""
    if not BUCKET.match(name):
        raise StorageError("NoSuchBucket", "The specified bucket does not exist", 404)
    return name


def check_key(key: str) -> str:
    """The key, or InvalidArgument naming why it is refused."""
    if not key:
        raise StorageError("InvalidArgument", "Object key must not be empty", 400)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates from a bad percent-encoding
        raise StorageError("InvalidArgument", "Object key is not valid UTF-8", 400) from None
    if size > MAX_KEY_BYTES:
        raise StorageError("KeyTooLongError", f"Object key is {size} bytes; at most {MAX_KEY_BYTES}", 400)
    if key.startswith("/") or "\\" in key or _CONTROL.search(key):
        raise StorageError("InvalidArgument", "Object key must be relative, without backslashes or control "
                           "characters", 400)
    parts = key.split("/")
    if key.endswith("/"):
        parts = parts[:-1]
    if any(part in ("", ".", "..") for part in parts):
        raise StorageError("InvalidArgument", "Object key must not contain '.', '..' or empty path segments", 400)
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: any text up to the key length limit (it only filters the catalog)."""
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise StorageError("InvalidArgument", f"prefix longer than {MAX_KEY_BYTES} bytes", 400)
    return prefix
