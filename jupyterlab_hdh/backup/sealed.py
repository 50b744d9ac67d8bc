"""Files sealed with an operator's passphrase: how a backup carries the installation's keys.

Owns the sealed format. A backup must carry the data directory's keys (the pseudonymisation
keys, the audit signing key...), and must never hold them in clear: each is sealed with a
passphrase the operator types at backup time and again at restore time.

A sealed blob is one header line, then the ciphertext::

    {"aead":"chacha20poly1305","format":"hdh-sealed","kdf":{"n":32768,"name":"scrypt",
     "p":1,"r":8,"salt":"<base64, 16 bytes>"},"nonce":"<base64, 12 bytes>","version":1}\\n
    <ChaCha20-Poly1305 ciphertext and tag>

The key is scrypt(passphrase as UTF-8 NFC, salt, n, r, p), 32 bytes (``cryptography``'s
Scrypt); the whole header line, newline included, is the AEAD's associated data, so no byte
of the header can change unnoticed. The header must be in its canonical form (sorted keys,
no spaces) and its parameters within bounds (``n`` a power of two from 2**15 to 2**20) before
any key is derived, so an altered header cannot make the reader spend unbounded memory.
A wrong passphrase and an altered blob are the same refusal: :class:`WrongPassphrase`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import unicodedata
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from jupyterlab_hdh.backup.errors import BackupError

FORMAT = "hdh-sealed"
VERSION = 1
AEAD = "chacha20poly1305"
#: scrypt's cost: 2**15 (32 MiB with r=8) is the least this module writes or reads
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_N, MAX_N = 2**15, 2**20
MAX_R, MAX_P = 16, 4
SALT_BYTES = 16
NONCE_BYTES = 12
#: the suffix :func:`seal_file` gives a sealed copy
SUFFIX = ".sealed"
_MAX_HEADER = 1024


class SealedError(BackupError):
    """A blob cannot be sealed or unsealed (the message says why)."""


class NotSealed(SealedError):
    """The blob is not an HDH sealed blob, or its header was altered."""


class WrongPassphrase(SealedError):
    """The passphrase is wrong, or the ciphertext was altered (AEAD cannot tell which)."""


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    if isinstance(passphrase, bytes):
        try:
            passphrase = passphrase.decode("utf-8")
        except UnicodeDecodeError:
            raise SealedError("the passphrase is not UTF-8 text") from None
    if not isinstance(passphrase, str):
        raise SealedError("the passphrase must be text")
    if passphrase == "":
        raise SealedError("the passphrase is empty: choose one and keep it safe")
    # the same passphrase typed on another system can come in another Unicode form
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _header(salt: bytes, nonce: bytes, n: int, r: int, p: int) -> bytes:
    fields = {
        "aead": AEAD,
        "format": FORMAT,
        "kdf": {"n": n, "name": "scrypt", "p": p, "r": r, "salt": _b64(salt)},
        "nonce": _b64(nonce),
        "version": VERSION,
    }
    return (json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def seal(
    data: bytes, passphrase: str | bytes, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> bytes:
    """``data`` encrypted and authenticated with a key derived from ``passphrase``."""
    secret = _passphrase_bytes(passphrase)
    _check_cost(n, r, p, SealedError)
    salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
    header = _header(salt, nonce, n, r, p)
    return header + ChaCha20Poly1305(_key(secret, salt, n, r, p)).encrypt(nonce, data, header)


def _check_cost(n: Any, r: Any, p: Any, error: type[SealedError]) -> None:
    def integer(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not (integer(n) and MIN_N <= n <= MAX_N and n & (n - 1) == 0):
        raise error(f"scrypt's n must be a power of two from 2**15 to 2**20, not {n!r}")
    if not (integer(r) and 1 <= r <= MAX_R and integer(p) and 1 <= p <= MAX_P):
        raise error(f"scrypt's r and p must be 1..{MAX_R} and 1..{MAX_P}, not {r!r} and {p!r}")


def _decode(text: Any, size: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise NotSealed(f"the sealed header's {what} is not base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NotSealed(f"the sealed header's {what} is not base64") from None
    if len(raw) != size:
        raise NotSealed(f"the sealed header's {what} is {len(raw)} bytes, not {size}")
    return raw


def read_header(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The parsed header of a sealed blob and the header's bytes (NotSealed if it is not one
    this code wrote: unknown format or version, out-of-bound parameters, altered form)."""
    end = blob.find(b"\n", 0, _MAX_HEADER)
    if not blob.startswith(b"{") or end < 0:
        raise NotSealed("not an HDH sealed file (no header)")
    raw = blob[: end + 1]
    try:
        header = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise NotSealed("the sealed header is not valid JSON: the file was altered") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise NotSealed("not an HDH sealed file (unknown format)")
    if header.get("version") != VERSION:
        raise NotSealed(
            f"sealed with format version {header.get('version')!r}; this HDH reads {VERSION}"
        )
    if header.get("aead") != AEAD:
        raise NotSealed(f"sealed with {header.get('aead')!r}; this HDH reads {AEAD}")
    kdf = header.get("kdf")
    if set(header) != {"aead", "format", "kdf", "nonce", "version"} or not isinstance(kdf, dict):
        raise NotSealed("the sealed header has unexpected fields: the file was altered")
    if set(kdf) != {"n", "name", "p", "r", "salt"} or kdf["name"] != "scrypt":
        raise NotSealed("the sealed header's key derivation is not scrypt: the file was altered")
    _check_cost(kdf["n"], kdf["r"], kdf["p"], NotSealed)
    salt = _decode(kdf["salt"], SALT_BYTES, "salt")
    nonce = _decode(header["nonce"], NONCE_BYTES, "nonce")
    if _header(salt, nonce, kdf["n"], kdf["r"], kdf["p"]) != raw:
        raise NotSealed("the sealed header is not in its canonical form: the file was altered")
    return header, raw


def unseal(blob: bytes, passphrase: str | bytes) -> bytes:
    """The data sealed in ``blob``; NotSealed or WrongPassphrase (never a stack trace)."""
    secret = _passphrase_bytes(passphrase)
    header, raw = read_header(bytes(blob))
    kdf = header["kdf"]
    salt = _decode(kdf["salt"], SALT_BYTES, "salt")
    nonce = _decode(header["nonce"], NONCE_BYTES, "nonce")
    key = _key(secret, salt, kdf["n"], kdf["r"], kdf["p"])
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, bytes(blob[len(raw) :]), raw)
    except InvalidTag:
        raise WrongPassphrase(
            "cannot unseal: wrong passphrase, or the sealed file was altered"
        ) from None


# --- files -------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a new file (never over an existing one), fsynced, with ``mode``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise SealedError(f"{path} exists already: it is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def seal_file(source: Path, dest: Path, passphrase: str | bytes) -> Path:
    """Seal the file ``source`` into the new file ``dest`` (0600); returns ``dest``."""
    _write_new(Path(dest), seal(Path(source).read_bytes(), passphrase))
    return Path(dest)


def unseal_file(source: Path, dest: Path, passphrase: str | bytes) -> Path:
    """Unseal ``source`` into the new file ``dest`` (0600, as keys are); returns ``dest``."""
    try:
        data = unseal(Path(source).read_bytes(), passphrase)
    except SealedError as exc:
        raise type(exc)(f"{source}: {exc}") from None
    _write_new(Path(dest), data)
    return Path(dest)


def seal_folder(source: Path, dest: Path, passphrase: str | bytes) -> list[Path]:
    """Seal every regular file of ``source`` (e.g. ``<data dir>/keys``) as ``dest/<name>.sealed``.

    ``dest`` is created (0700). Refuses a subfolder or a link in ``source``: keys are plain
    files, and a link could make a backup carry a file from elsewhere."""
    source, dest = Path(source), Path(dest)
    entries = sorted(source.iterdir())
    for entry in entries:
        if entry.is_symlink() or not entry.is_file():
            raise SealedError(f"{entry} is not a plain file: only plain files are sealed")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    return [seal_file(e, dest / (e.name + SUFFIX), passphrase) for e in entries]


def unseal_folder(source: Path, dest: Path, passphrase: str | bytes) -> list[Path]:
    """Unseal every ``*.sealed`` file of ``source`` into ``dest/<name>`` (0600).

    Every file is unsealed in memory before any is written, so a wrong passphrase or an
    altered file writes nothing."""
    source, dest = Path(source), Path(dest)
    clear: list[tuple[Path, bytes]] = []
    for entry in sorted(source.iterdir()):
        if entry.is_symlink() or not entry.is_file() or not entry.name.endswith(SUFFIX):
            raise SealedError(f"{entry} is not a sealed file ({SUFFIX})")
        try:
            data = unseal(entry.read_bytes(), passphrase)
        except SealedError as exc:
            raise type(exc)(f"{entry}: {exc}") from None
        clear.append((dest / entry.name[: -len(SUFFIX)], data))
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (p for p, _ in clear):
        if path.exists() or path.is_symlink():
            raise SealedError(f"{path} exists already: it is never overwritten")
    for path, data in clear:
        _write_new(path, data)
    return [p for p, _ in clear]
