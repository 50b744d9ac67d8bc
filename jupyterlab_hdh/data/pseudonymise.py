"""Keyed pseudonymisation of identifiers (FOIN-like double HMAC-SHA256) and its key files.

Owns: the two pseudonymisation keys (creating them with safe permissions, loading and
validating them, fingerprinting them so a store can detect a wrong key file), and the
functions that turn identifier columns into pseudonyms.

Scheme. Two 32-byte keys, ``k1`` and ``k2``, are meant to be held by different parties:

* ``pseudonymise``: ``hex(HMAC-SHA256(k2, HMAC-SHA256(k1, utf8(raw))))``, where the
  second HMAC takes the 32 raw bytes of the first digest;
* ``rekey``, for extracts the source already pseudonymised (first hash done there):
  ``hex(HMAC-SHA256(k2, utf8(value)))``.

Pseudonyms are 64 lowercase hex characters. Columns are deduplicated first (each
distinct identifier is hashed once, then pseudonyms are taken back by index), and nulls
stay null. The batch HMAC itself lives in :mod:`jupyterlab_hdh.data._hmac_batch`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jupyterlab_hdh.data._hmac_batch import Backend, hmac_sha256_many
from jupyterlab_hdh.errors import HdhError

__all__ = [
    "KEY1_FILENAME",
    "KEY2_FILENAME",
    "IdenticalKeysError",
    "KeyFileError",
    "KeyFileExistsError",
    "KeyFileMalformedError",
    "KeyFileMissingError",
    "KeyFilePermissionError",
    "KeyPair",
    "create_keys",
    "hmac_sha256_many",
    "load_keys",
    "pseudonymise",
    "pseudonymise_one",
    "rekey",
]

KEY1_FILENAME = "foin1.key"
KEY2_FILENAME = "foin2.key"
KEY_BYTES = 32
PSEUDONYM_LENGTH = 64
_FINGERPRINT_DOMAIN = b"hdh-key-fingerprint"
_HEX_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")


class KeyFileError(HdhError):
    """A pseudonymisation key file is missing, unsafe or unusable."""

    http_status = 503

    def detail(self) -> str:
        return f"pseudonymisation keys unusable: {self}"


class KeyFileMissingError(KeyFileError):
    """A key file does not exist."""


class KeyFilePermissionError(KeyFileError):
    """A key file can be read or written by group or others."""


class KeyFileMalformedError(KeyFileError):
    """A key file does not hold exactly 64 hexadecimal characters."""


class IdenticalKeysError(KeyFileError):
    """Both key files hold the same key."""


class KeyFileExistsError(KeyFileError):
    """Creating keys would overwrite existing key files."""


@dataclass(frozen=True)
class KeyPair:
    """The two pseudonymisation keys. Their bytes never appear in ``repr``."""

    k1: bytes = field(repr=False)
    k2: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name, key in (("k1", self.k1), ("k2", self.k2)):
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"{name} must be {KEY_BYTES} bytes")
        if hmac.compare_digest(self.k1, self.k2):
            raise IdenticalKeysError("the two pseudonymisation keys must differ")

    def fingerprint(self) -> str:
        """Short stable identifier of this key pair (16 hex chars), safe to store and log."""
        return hashlib.sha256(_FINGERPRINT_DOMAIN + self.k1 + self.k2).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"KeyPair(fingerprint={self.fingerprint()!r})"


def _key_paths(keys_dir: Path) -> tuple[Path, Path]:
    return keys_dir / KEY1_FILENAME, keys_dir / KEY2_FILENAME


def _write_new_key(path: Path, key: bytes) -> None:
    """Create ``path`` with mode 0600 from the start; fail if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileExistsError(
            f"key file {path} already exists; refusing to overwrite it "
            "(new keys would change every pseudonym)"
        ) from exc
    try:
        os.fchmod(fd, 0o600)  # exact mode whatever the umask
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def create_keys(keys_dir: Path) -> KeyPair:
    """Generate two fresh random keys into ``keys_dir`` (``foin1.key``, ``foin2.key``).

    The directory is made (or tightened to) mode 0700 and each file is created with
    mode 0600 (no window where it is readable by others). Refuses to overwrite keys.
    """
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys_dir, 0o700)
    path1, path2 = _key_paths(keys_dir)
    for path in (path1, path2):
        if os.path.lexists(path):
            raise KeyFileExistsError(
                f"key file {path} already exists; refusing to overwrite it "
                "(new keys would change every pseudonym)"
            )
    k1 = secrets.token_bytes(KEY_BYTES)
    k2 = secrets.token_bytes(KEY_BYTES)
    while k2 == k1:  # pragma: no cover - probability 2**-256
        k2 = secrets.token_bytes(KEY_BYTES)
    _write_new_key(path1, k1)
    try:
        _write_new_key(path2, k2)
    except BaseException:
        path1.unlink(missing_ok=True)
        raise
    return KeyPair(k1, k2)


def _read_key(path: Path) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise KeyFileMissingError(
            f"pseudonymisation key file {path} is missing. Create the keys with `hdh init` "
            "(or restore this file from its backup: new keys give different pseudonyms)"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileMalformedError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFilePermissionError(
            f"key file {path} is accessible to group or others "
            f"(mode {stat.filemode(st.st_mode)}); refusing to use it. Run: chmod 600 {path}"
        )
    try:
        text = path.read_bytes().decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if not _HEX_KEY_RE.fullmatch(text):
        raise KeyFileMalformedError(
            f"key file {path} is malformed: expected exactly 64 hexadecimal characters "
            f"({KEY_BYTES} bytes) on one line"
        )
    return bytes.fromhex(text)


def load_keys(keys_dir: Path) -> KeyPair:
    """Read and validate the key pair in ``keys_dir``; raises a :class:`KeyFileError`."""
    path1, path2 = _key_paths(Path(keys_dir))
    k1 = _read_key(path1)
    k2 = _read_key(path2)
    if hmac.compare_digest(k1, k2):
        raise IdenticalKeysError(
            f"{path1} and {path2} hold the same key; the two keys must differ "
            "(they are meant to be held by different parties)"
        )
    return KeyPair(k1, k2)


# --------------------------------------------------------------------------- pseudonyms

# _HEX_PAIRS[b] is the two ASCII hex digits of byte b, as a little-endian uint16.
_HEX_PAIRS = np.array(
    [int.from_bytes(f"{b:02x}".encode("ascii"), "little") for b in range(256)], dtype="<u2"
)


def _hex_strings(digests: pa.FixedSizeBinaryArray) -> pa.Array:
    """Lowercase hex of each fixed-size digest, as a string array (vectorised)."""
    n = len(digests)
    width = digests.type.byte_width
    data = digests.buffers()[1]
    raw = np.frombuffer(data, dtype=np.uint8, count=n * width, offset=digests.offset * width)
    text = _HEX_PAIRS[raw]
    large = 2 * width * n >= 2**31 - 1
    offsets = np.arange(0, 2 * width * (n + 1), 2 * width, dtype=np.int64 if large else np.int32)
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        n,
        [None, pa.py_buffer(offsets), pa.py_buffer(text)],
    )


def _flatten(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunk(0)
        if values.num_chunks == 0:
            return pa.array([], type=values.type)
        return values.combine_chunks()
    if not isinstance(values, pa.Array):
        raise TypeError(f"expected a pyarrow Array or ChunkedArray, got {type(values).__name__}")
    return values


def _hash_distinct(
    values: pa.Array | pa.ChunkedArray,
    keys: list[bytes],
    backend: Backend | None,
) -> pa.Array:
    """Chain HMACs over the distinct values of ``values``, hex-encode, take back by index."""
    arr = _flatten(values)
    t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_dictionary(t):
        hashed = _hash_distinct(arr.dictionary, keys, backend)
        return _take(hashed, arr.indices)
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary_view(t)
    ):
        raise TypeError(f"identifiers must be a string or binary column, got {t}")
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        arr = arr.cast(pa.large_string() if pa.types.is_string_view(t) else pa.large_binary())
    encoded = pc.dictionary_encode(arr)  # nulls become null indices
    digests: pa.Array = encoded.dictionary
    for key in keys:
        digests = hmac_sha256_many(key, digests, backend=backend)
    return _take(_hex_strings(digests), encoded.indices)


def _take(pseudonyms: pa.Array, indices: pa.Array) -> pa.Array:
    n = len(indices)
    if n * PSEUDONYM_LENGTH >= 2**31 - 1:
        pseudonyms = pseudonyms.cast(pa.large_string())  # output exceeds 32-bit offsets
    return pc.take(pseudonyms, indices)


def pseudonymise(
    values: pa.Array | pa.ChunkedArray,
    keys: KeyPair,
    *,
    backend: Backend | None = None,
) -> pa.Array:
    """Pseudonymise raw identifiers: ``hex(HMAC(k2, HMAC(k1, utf8(value))))`` per value.

    Accepts a string or binary column (chunked, sliced or dictionary-encoded); each
    distinct value is hashed once; nulls stay null. Returns a string array of 64
    lowercase hex characters (``large_string`` if it would exceed 2 GiB of text).
    ``backend`` forces the compiled (``"c"``) or pure-Python path.
    """
    return _hash_distinct(values, [keys.k1, keys.k2], backend)


def rekey(
    values: pa.Array | pa.ChunkedArray,
    keys: KeyPair,
    *,
    backend: Backend | None = None,
) -> pa.Array:
    """Second hash for values the source already pseudonymised: ``hex(HMAC(k2, utf8(v)))``.

    Same deduplication, null handling and output as :func:`pseudonymise`.
    """
    return _hash_distinct(values, [keys.k2], backend)


def pseudonymise_one(raw: str, keys: KeyPair) -> str:
    """Pseudonym of one raw identifier (e.g. for the opt-out register); same as the batch."""
    inner = hmac.digest(keys.k1, raw.encode("utf-8"), "sha256")
    return hmac.digest(keys.k2, inner, "sha256").hex()
