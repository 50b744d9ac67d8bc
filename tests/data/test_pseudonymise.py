"""Keyed pseudonymisation: batch HMAC equals ``hmac.digest``, double hashing, dedup, keys."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyterlab_hdh.data import _hmac_batch
from jupyterlab_hdh.data import pseudonymise as pseudo_mod
from jupyterlab_hdh.data._hmac_batch import Backend, hmac_sha256_many
from jupyterlab_hdh.data.pseudonymise import (
    IdenticalKeysError,
    KeyFileError,
    KeyFileExistsError,
    KeyFileMalformedError,
    KeyFileMissingError,
    KeyFilePermissionError,
    KeyPair,
    create_keys,
    load_keys,
    pseudonymise,
    pseudonymise_one,
    rekey,
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
KEYS = KeyPair(K1, K2)

HAS_COMPILED = _hmac_batch.compiled_module() is not None
BACKENDS = [
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            not HAS_COMPILED, reason=f"no compiled backend: {_hmac_batch.compile_error()}"
        ),
    ),
    "python",
]

SAMPLES = [
    "",
    "1",
    "185057800608436",  # NIR-like, 15 bytes
    "é",
    "Zoë 🙂 ∑ 漢字",
    "x" * 55,  # inner message fits the first block with padding
    "y" * 56,  # padding spills into a second block
    "z" * 64,
    "w" * 65,
    "long value " * 40,
]


def _ref(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, "sha256").digest()


def _ref_pseudonym(raw: str, keys: KeyPair = KEYS) -> str:
    return _ref(keys.k2, _ref(keys.k1, raw.encode())).hex()


def _random_values(rng: random.Random, n: int) -> list[str]:
    alphabet = "0123456789abcdefABCDEF éèàç漢🙂\x00"
    return ["".join(rng.choices(alphabet, k=rng.randrange(0, 150))) for _ in range(n)]


# ----------------------------------------------------------------- batch primitive


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "arrow_type", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]
)
def test_batch_matches_hmac_new(backend: Backend, arrow_type: pa.DataType) -> None:
    rng = random.Random(1)
    values = SAMPLES + _random_values(rng, 300)
    encoded = [v.encode() for v in values]
    arr = pa.array(
        values
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
        else encoded,
        type=arrow_type,
    )
    for key in (K1, b"", b"short", bytes(64), bytes(range(200))):  # incl. keys > block size
        got = hmac_sha256_many(key, arr, backend=backend)
        assert got.type == pa.binary(32)
        assert got.to_pylist() == [_ref(key, m) for m in encoded]


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_sliced_chunked_and_fixed_size(backend: Backend) -> None:
    values = [v.encode() for v in SAMPLES]
    arr = pa.array(values)
    sliced = arr.slice(3, 5)
    assert hmac_sha256_many(K1, sliced, backend=backend).to_pylist() == [
        _ref(K1, m) for m in values[3:8]
    ]
    chunked = pa.chunked_array([arr.slice(0, 4), arr.slice(4)])
    assert hmac_sha256_many(K1, chunked, backend=backend).to_pylist() == [
        _ref(K1, m) for m in values
    ]
    fixed = pa.array([bytes([i]) * 32 for i in range(10)], type=pa.binary(32)).slice(2)
    assert hmac_sha256_many(K1, fixed, backend=backend).to_pylist() == [
        _ref(K1, bytes([i]) * 32) for i in range(2, 10)
    ]
    empty_values = pa.array(["", "", ""])
    assert hmac_sha256_many(K1, empty_values, backend=backend).to_pylist() == [_ref(K1, b"")] * 3
    assert len(hmac_sha256_many(K1, pa.array([], pa.string()), backend=backend)) == 0


def test_batch_rejects_nulls_and_non_binary() -> None:
    with pytest.raises(ValueError, match="nulls"):
        hmac_sha256_many(K1, pa.array(["a", None]))
    with pytest.raises(TypeError):
        hmac_sha256_many(K1, pa.array([1, 2]))


def test_fallback_forced_by_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_hmac_batch.BACKEND_ENV, "python")
    assert _hmac_batch.resolve_backend() == "python"
    out = hmac_sha256_many(K1, pa.array(SAMPLES))
    assert out.to_pylist() == [_ref(K1, v.encode()) for v in SAMPLES]
    monkeypatch.setenv(_hmac_batch.BACKEND_ENV, "bogus")
    with pytest.raises(ValueError, match="unknown HMAC backend"):
        _hmac_batch.resolve_backend()


def test_fallback_when_compilation_impossible(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_hmac_batch, "_lib_state", {"module": None, "error": "no compiler"})
    monkeypatch.setattr(_hmac_batch, "_warned_fallback", False)
    monkeypatch.delenv(_hmac_batch.BACKEND_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger=_hmac_batch.__name__):
        assert _hmac_batch.resolve_backend() == "python"
        assert _hmac_batch.resolve_backend() == "python"
        got = pseudonymise(pa.array(["abc"]), KEYS)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no compiler" in warnings[0].getMessage()
    assert got.to_pylist() == [_ref_pseudonym("abc")]
    with pytest.raises(RuntimeError, match="no compiler"):
        _hmac_batch.resolve_backend("c")


def test_cache_dir_must_be_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # noqa: S103
    with pytest.raises(OSError, match="writable by group or others"):
        _hmac_batch._check_private_dir(shared)
    os.chmod(shared, 0o700)
    _hmac_batch._check_private_dir(shared)


@pytest.mark.skipif(not HAS_COMPILED, reason="no C compiler / OpenSSL headers")
def test_concurrent_builds_into_fresh_cache(tmp_path: Path) -> None:
    """Two processes building the extension at once both load a complete module."""
    script = textwrap.dedent(
        """
        import hmac, pyarrow as pa
        from jupyterlab_hdh.data import _hmac_batch as hb
        assert hb.compiled_module() is not None, hb.compile_error()
        out = hb.hmac_sha256_many(b"k", pa.array(["a", "bc"]), backend="c").to_pylist()
        assert out == [hmac.digest(b"k", m, "sha256") for m in (b"a", b"bc")]
        """
    )
    env = {**os.environ, _hmac_batch.CACHE_DIR_ENV: str(tmp_path / "cache")}
    env.pop(_hmac_batch.BACKEND_ENV, None)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    cache = tmp_path / "cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    built = [p.name for p in cache.iterdir()]
    assert len(built) == 1 and built[0].startswith("_hdh_hmac_")  # temp dirs cleaned up


# ----------------------------------------------------------------- pseudonyms


@pytest.mark.parametrize("backend", BACKENDS)
def test_double_hashing_and_rekey(backend: Backend) -> None:
    arr = pa.array(SAMPLES)
    got = pseudonymise(arr, KEYS, backend=backend)
    assert got.type == pa.string()
    expected = [_ref(K2, _ref(K1, v.encode())).hex() for v in SAMPLES]
    assert got.to_pylist() == expected
    assert all(len(p) == 64 and p == p.lower() for p in expected)
    assert [pseudonymise_one(v, KEYS) for v in SAMPLES] == expected
    rekeyed = rekey(arr, KEYS, backend=backend)
    assert rekeyed.to_pylist() == [_ref(K2, v.encode()).hex() for v in SAMPLES]


def test_dedup_hashes_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[bytes]] = []
    real = pseudo_mod.hmac_sha256_many

    def spy(key: bytes, messages: pa.Array, backend: Backend | None = None) -> pa.Array:
        if pa.types.is_fixed_size_binary(messages.type):
            items = messages.to_pylist()
        else:
            items = messages.cast(pa.binary()).to_pylist()
        calls.append(items)
        return real(key, messages, backend=backend)

    monkeypatch.setattr(pseudo_mod, "hmac_sha256_many", spy)
    rng = random.Random(7)
    distinct = [f"{rng.randrange(10**14, 10**15)}" for _ in range(50)]
    rows = [rng.choice(distinct) for _ in range(2000)] + [None] * 10
    rng.shuffle(rows)
    col = pa.chunked_array([pa.array(rows[:700]), pa.array(rows[700:])])
    got = pseudonymise(col, KEYS)
    n_distinct = len({r for r in rows if r is not None})
    assert len(calls) == 2  # k1 over distinct raw values, then k2 over their digests
    assert all(len(c) == n_distinct == len(set(c)) for c in calls)
    assert None not in calls[0]
    assert got.to_pylist() == [None if r is None else _ref_pseudonym(r) for r in rows]

    calls.clear()
    rekey(col, KEYS)
    assert len(calls) == 1 and len(calls[0]) == n_distinct == len(set(calls[0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nulls_preserved(backend: Backend) -> None:
    rows = ["a", None, "b", "a", None, ""]
    for arr in (
        pa.array(rows),
        pa.array(rows, pa.large_string()),
        pa.array(rows).dictionary_encode(),
        pa.chunked_array([pa.array(rows[:2]), pa.array(rows[2:])]),
        pa.array(["pad", *rows]).slice(1),
    ):
        got = pseudonymise(arr, KEYS, backend=backend)
        assert isinstance(got, pa.Array) and len(got) == len(rows)
        assert got.to_pylist() == [None if r is None else _ref_pseudonym(r) for r in rows]
    assert pseudonymise(pa.array([None, None]), KEYS).to_pylist() == [None, None]
    all_null = pseudonymise(pa.array([None, None], pa.string()), KEYS)
    assert all_null.to_pylist() == [None, None] and all_null.type == pa.string()
    assert len(pseudonymise(pa.array([], pa.string()), KEYS)) == 0
    assert len(pseudonymise(pa.chunked_array([], pa.string()), KEYS)) == 0


def test_rejects_non_identifier_types() -> None:
    with pytest.raises(TypeError):
        pseudonymise(pa.array([1, 2, 3]), KEYS)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=80)), max_size=40))
def test_property_matches_reference(rows: list[str | None]) -> None:
    arr = pa.array(rows, pa.string())
    expected = [None if r is None else _ref_pseudonym(r) for r in rows]
    assert pseudonymise(arr, KEYS, backend="python").to_pylist() == expected
    if HAS_COMPILED:
        assert pseudonymise(arr, KEYS, backend="c").to_pylist() == expected
    expected_rekey = [None if r is None else _ref(K2, r.encode()).hex() for r in rows]
    assert rekey(arr, KEYS).to_pylist() == expected_rekey


# ----------------------------------------------------------------- key files


def test_create_keys_modes_and_roundtrip(tmp_path: Path) -> None:
    keys_dir = tmp_path / "data" / "keys"
    old = os.umask(0)  # even a permissive umask must not widen the modes
    try:
        created = create_keys(keys_dir)
    finally:
        os.umask(old)
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    for name, key in (("foin1.key", created.k1), ("foin2.key", created.k2)):
        path = keys_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == key.hex() + "\n"
    assert len(created.k1) == len(created.k2) == 32 and created.k1 != created.k2
    assert load_keys(keys_dir) == created


def test_create_keys_tightens_existing_dir(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o755)
    os.chmod(keys_dir, 0o755)  # noqa: S103
    create_keys(keys_dir)
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700


def test_create_keys_refuses_overwrite(tmp_path: Path) -> None:
    first = create_keys(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyFileExistsError, match="refusing to overwrite"):
        create_keys(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # only one of the two present: still refused, nothing written
    (tmp_path / "foin1.key").unlink()
    with pytest.raises(KeyFileExistsError, match="foin2.key"):
        create_keys(tmp_path)
    assert not (tmp_path / "foin1.key").exists()
    assert first.k1 != first.k2


def test_load_keys_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissingError) as info:
        load_keys(tmp_path)
    assert str(tmp_path / "foin1.key") in str(info.value)
    assert "hdh init" in str(info.value)
    create_keys(tmp_path)
    (tmp_path / "foin2.key").unlink()
    with pytest.raises(KeyFileMissingError, match="foin2.key"):
        load_keys(tmp_path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_load_keys_refuses_loose_permissions(tmp_path: Path, mode: int) -> None:
    create_keys(tmp_path)
    path = tmp_path / "foin2.key"
    os.chmod(path, mode)
    with pytest.raises(KeyFilePermissionError) as info:
        load_keys(tmp_path)
    assert f"chmod 600 {path}" in str(info.value)
    assert isinstance(info.value, KeyFileError)


def _write_key_file(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.chmod(path, 0o600)


@pytest.mark.parametrize(
    "content",
    [b"", b"abc\n", b"0" * 63 + b"\n", b"0" * 65 + b"\n", b"g" * 64 + b"\n", b"\xff" * 64],
)
def test_load_keys_malformed(tmp_path: Path, content: bytes) -> None:
    create_keys(tmp_path)
    _write_key_file(tmp_path / "foin1.key", content)
    with pytest.raises(KeyFileMalformedError, match="64 hexadecimal"):
        load_keys(tmp_path)


def test_load_keys_identical(tmp_path: Path) -> None:
    create_keys(tmp_path)
    _write_key_file(tmp_path / "foin2.key", (tmp_path / "foin1.key").read_bytes())
    with pytest.raises(IdenticalKeysError, match="same key"):
        load_keys(tmp_path)
    with pytest.raises(IdenticalKeysError):
        KeyPair(K1, K1)


def test_error_hierarchy() -> None:
    for cls in (
        KeyFileMissingError,
        KeyFilePermissionError,
        KeyFileMalformedError,
        IdenticalKeysError,
        KeyFileExistsError,
    ):
        assert issubclass(cls, KeyFileError) and issubclass(cls, Exception)


def test_fingerprint(tmp_path: Path) -> None:
    fp = KEYS.fingerprint()
    assert fp == KeyPair(K1, K2).fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == hashlib.sha256(b"hdh-key-fingerprint" + K1 + K2).hexdigest()[:16]
    assert KeyPair(K2, K1).fingerprint() != fp
    assert KeyPair(K1, bytes(32)).fingerprint() != fp
    created = create_keys(tmp_path)
    assert load_keys(tmp_path).fingerprint() == created.fingerprint() != fp
    # keys never leak through repr
    assert K1.hex() not in repr(KEYS) and K2.hex() not in repr(KEYS)
    assert fp in repr(KEYS)
