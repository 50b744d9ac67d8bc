"""Batched HMAC-SHA256 over Arrow arrays: a compiled fast path and a pure-Python fallback.

Owns the low-level primitive behind pseudonymisation: HMAC-SHA256 of every value of an
Arrow binary/string array under one key, with results byte-identical to
:func:`hmac.digest`. Nothing here knows about key files or pseudonyms.

Fast path: a small C loop over OpenSSL's libcrypto SHA-256. The key's inner and outer
midstates (the SHA-256 state after the 64-byte ipad/opad blocks) are computed once per
call; for each message the C loop copies the precomputed state and hashes only the
message and the inner digest, reading the messages straight from the Arrow offsets and
data buffers (no Python object per value). The loop is built with ``cffi`` in API mode
the first time it is needed and cached in a per-user directory
(``$HDH_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdh``, else ``~/.cache/hdh``), under a name
derived from the source hash, Python and platform, so an edited source is rebuilt and
concurrent builds cannot collide (each builds in its own temporary directory and
``os.replace``-s the result into place). cffi releases the GIL during the C call.

Fallback: when the extension cannot be built or loaded (no C compiler, no OpenSSL
headers, unwritable or unsafe cache), a hashlib loop with the same precomputed
midstates, announced once with a logging warning. ``HDH_HMAC_BACKEND`` (``auto``,
``c`` or ``python``) or the ``backend=`` argument forces a path.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import shutil
import stat
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Literal

import pyarrow as pa

log = logging.getLogger(__name__)

Backend = Literal["auto", "c", "python"]

BACKEND_ENV = "HDH_HMAC_BACKEND"
CACHE_DIR_ENV = "HDH_CACHE_DIR"
DIGEST_SIZE = 32
DIGEST_TYPE = pa.binary(DIGEST_SIZE)

_CDEF = """
int hdh_hmac_sha256_off32(const unsigned char *key, size_t keylen,
                          const unsigned char *data, const int32_t *offsets,
                          size_t n, unsigned char *out);
int hdh_hmac_sha256_off64(const unsigned char *key, size_t keylen,
                          const unsigned char *data, const int64_t *offsets,
                          size_t n, unsigned char *out);
int hdh_hmac_sha256_fixed(const unsigned char *key, size_t keylen,
                          const unsigned char *data, size_t width,
                          size_t n, unsigned char *out);
"""

_C_SOURCE = r"""
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} hdh_hmac_ctx;

/* Midstates after the 64-byte ipad / opad blocks (RFC 2104). */
static int hdh_hmac_setup(const unsigned char *key, size_t keylen, hdh_hmac_ctx *c)
{
    unsigned char block[64];
    unsigned char pad[64];
    size_t i;
    memset(block, 0, sizeof block);
    if (keylen > sizeof block) {
        SHA256(key, keylen, block);
    } else if (keylen > 0) {
        memcpy(block, key, keylen);
    }
    for (i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    if (!SHA256_Init(&c->inner) || !SHA256_Update(&c->inner, pad, 64)) return -1;
    for (i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    if (!SHA256_Init(&c->outer) || !SHA256_Update(&c->outer, pad, 64)) return -1;
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    return 0;
}

static inline void hdh_hmac_one(const hdh_hmac_ctx *c, const unsigned char *m,
                                size_t len, unsigned char *out)
{
    SHA256_CTX ctx = c->inner;
    SHA256_Update(&ctx, m, len);
    SHA256_Final(out, &ctx);
    ctx = c->outer;
    SHA256_Update(&ctx, out, 32);
    SHA256_Final(out, &ctx);
}

int hdh_hmac_sha256_off32(const unsigned char *key, size_t keylen,
                          const unsigned char *data, const int32_t *offsets,
                          size_t n, unsigned char *out)
{
    hdh_hmac_ctx c;
    size_t i;
    if (hdh_hmac_setup(key, keylen, &c) != 0) return -1;
    for (i = 0; i < n; i++) {
        int32_t a = offsets[i], b = offsets[i + 1];
        if (b < a) { OPENSSL_cleanse(&c, sizeof c); return -2; }
        hdh_hmac_one(&c, data + a, (size_t)(b - a), out + 32 * i);
    }
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}

int hdh_hmac_sha256_off64(const unsigned char *key, size_t keylen,
                          const unsigned char *data, const int64_t *offsets,
                          size_t n, unsigned char *out)
{
    hdh_hmac_ctx c;
    size_t i;
    if (hdh_hmac_setup(key, keylen, &c) != 0) return -1;
    for (i = 0; i < n; i++) {
        int64_t a = offsets[i], b = offsets[i + 1];
        if (b < a) { OPENSSL_cleanse(&c, sizeof c); return -2; }
        hdh_hmac_one(&c, data + a, (size_t)(b - a), out + 32 * i);
    }
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}

int hdh_hmac_sha256_fixed(const unsigned char *key, size_t keylen,
                          const unsigned char *data, size_t width,
                          size_t n, unsigned char *out)
{
    hdh_hmac_ctx c;
    size_t i;
    if (hdh_hmac_setup(key, keylen, &c) != 0) return -1;
    for (i = 0; i < n; i++) {
        hdh_hmac_one(&c, data + width * i, width, out + 32 * i);
    }
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}
"""

_lib_lock = threading.Lock()
_lib_state: dict[str, object] = {}  # "module" -> ModuleType | None, "error" -> str
_warned_fallback = False


def cache_dir() -> Path:
    """Per-user directory where the compiled extension is cached."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hdh"


def _module_name() -> str:
    import cffi

    h = hashlib.sha256()
    for part in (
        _CDEF,
        _C_SOURCE,
        cffi.__version__,
        sys.implementation.cache_tag or "",
        sysconfig.get_platform(),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return f"_hdh_hmac_{h.hexdigest()[:16]}"


def _check_private_dir(path: Path) -> None:
    """Refuse to load code from a directory other users could write to."""
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} is not a directory")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise OSError(f"{path} is not owned by the current user")
    if st.st_mode & 0o022:
        raise OSError(f"{path} is writable by group or others (chmod 700 {path})")


def _build(name: str, target: Path) -> None:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.set_source(
        name,
        _C_SOURCE,
        libraries=["crypto"],
        extra_compile_args=["-O2"],
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        built = Path(ffi.compile(tmpdir=str(tmp), verbose=False))
        os.chmod(built, 0o700)
        os.replace(built, target)  # atomic: concurrent builders never see a partial file
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_extension() -> ModuleType:
    name = _module_name()
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private_dir(directory)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    target = directory / f"{name}{suffix}"
    if not target.exists():
        log.info("building the HMAC-SHA256 extension into %s", target)
        _build(name, target)
    loader = importlib.machinery.ExtensionFileLoader(name, str(target))
    spec = importlib.util.spec_from_file_location(name, target, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {target}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def compiled_module() -> ModuleType | None:
    """The compiled extension, built on first use; None (with the reason kept) if impossible."""
    with _lib_lock:
        if "module" not in _lib_state:
            try:
                _lib_state["module"] = _load_extension()
            except Exception as exc:  # any failure means: use the fallback
                _lib_state["module"] = None
                _lib_state["error"] = f"{type(exc).__name__}: {exc}"
        module = _lib_state["module"]
    return module if isinstance(module, ModuleType) else None


def compile_error() -> str | None:
    """Why the compiled path is unavailable (after :func:`compiled_module` returned None)."""
    error = _lib_state.get("error")
    return error if isinstance(error, str) else None


def resolve_backend(backend: Backend | None = None) -> Literal["c", "python"]:
    """Pick the implementation: argument, else ``HDH_HMAC_BACKEND``, else ``auto``."""
    global _warned_fallback
    choice = backend or os.environ.get(BACKEND_ENV, "auto") or "auto"
    if choice == "python":
        return "python"
    if choice not in ("auto", "c"):
        raise ValueError(f"unknown HMAC backend {choice!r} (expected auto, c or python)")
    if compiled_module() is not None:
        return "c"
    if choice == "c":
        raise RuntimeError(f"the compiled HMAC backend is unavailable: {compile_error()}")
    if not _warned_fallback:
        _warned_fallback = True
        log.warning(
            "compiled HMAC-SHA256 unavailable (%s); using the slower pure-Python path. "
            "Install a C compiler and the OpenSSL headers (Debian: libssl-dev) to enable it.",
            compile_error(),
        )
    return "python"


def _as_flat_array(messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks() if messages.num_chunks != 1 else messages.chunk(0)
    t = messages.type
    if pa.types.is_string(t):
        messages = messages.view(pa.binary())
    elif pa.types.is_large_string(t):
        messages = messages.view(pa.large_binary())
    elif pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        messages = messages.cast(pa.large_binary())
    elif not (
        pa.types.is_binary(messages.type)
        or pa.types.is_large_binary(messages.type)
        or pa.types.is_fixed_size_binary(messages.type)
    ):
        raise TypeError(f"expected a binary or string array, got {t}")
    if messages.null_count:
        raise ValueError("messages must not contain nulls (drop or mask them first)")
    return messages


def hmac_sha256_many(
    key: bytes,
    messages: pa.Array | pa.ChunkedArray,
    *,
    backend: Backend | None = None,
) -> pa.FixedSizeBinaryArray:
    """HMAC-SHA256 of every value of ``messages`` under ``key``.

    ``messages`` is a string/binary (large, view or fixed-size) Arrow array without
    nulls; strings are hashed as their UTF-8 bytes. Returns a ``fixed_size_binary(32)``
    array whose item ``i`` equals ``hmac.digest(key, messages[i], "sha256")``.
    Every value is hashed: deduplicate before calling.
    """
    arr = _as_flat_array(messages)
    n = len(arr)
    out = bytearray(DIGEST_SIZE * n)
    if n:
        if resolve_backend(backend) == "c":
            _hash_compiled(bytes(key), arr, out)
        else:
            _hash_python(bytes(key), arr, out)
    return pa.Array.from_buffers(DIGEST_TYPE, n, [None, pa.py_buffer(out)])


def _hash_compiled(key: bytes, arr: pa.Array, out: bytearray) -> None:
    module = compiled_module()
    assert module is not None
    ffi, lib = module.ffi, module.lib
    n = len(arr)
    buffers = arr.buffers()
    t = arr.type
    out_p = ffi.from_buffer(out, require_writable=True)
    if pa.types.is_fixed_size_binary(t):
        width = t.byte_width
        data = buffers[1]
        data_p = ffi.from_buffer(data) if data is not None and data.size else ffi.NULL
        if width and data_p != ffi.NULL:
            data_p = data_p + arr.offset * width
        rc = lib.hdh_hmac_sha256_fixed(key, len(key), data_p, width, n, out_p)
    else:
        large = pa.types.is_large_binary(t)
        itemsize = 8 if large else 4
        offsets, data = buffers[1], buffers[2]
        off_p = ffi.cast(
            "const int64_t *" if large else "const int32_t *", ffi.from_buffer(offsets)
        )
        off_p = off_p + arr.offset
        if offsets.size < (arr.offset + n + 1) * itemsize:
            raise ValueError("corrupt Arrow array: offsets buffer too short")
        data_p = ffi.from_buffer(data) if data is not None and data.size else ffi.NULL
        if data_p == ffi.NULL:
            # every value is empty: any valid pointer will do
            data_p = ffi.from_buffer(b"\0")
        func = lib.hdh_hmac_sha256_off64 if large else lib.hdh_hmac_sha256_off32
        rc = func(key, len(key), data_p, off_p, n, out_p)
    if rc != 0:
        raise RuntimeError(f"HMAC-SHA256 batch failed (code {rc})")


def _hash_python(key: bytes, arr: pa.Array, out: bytearray) -> None:
    if len(key) > hashlib.sha256().block_size:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    view = memoryview(out)
    pos = 0
    for m in arr.to_pylist():
        h = inner.copy()
        h.update(m)
        o = outer.copy()
        o.update(h.digest())
        view[pos : pos + DIGEST_SIZE] = o.digest()
        pos += DIGEST_SIZE
