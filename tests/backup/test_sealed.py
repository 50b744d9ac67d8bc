"""Keys sealed with an operator's passphrase: round trip, and every refusal one line, never a
stack trace: a wrong passphrase, any byte of the blob altered, an empty passphrase, a
header asking for an unbounded key derivation. The clear key never appears in a sealed blob."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from jupyterlab_hdh.backup import sealed
from jupyterlab_hdh.data.pseudonymise import create_keys

PASSPHRASE = "correct horse battery staple"


def test_round_trip() -> None:
    data = b"\x00secret key material\xff" * 3
    blob = sealed.seal(data, PASSPHRASE)
    assert sealed.unseal(blob, PASSPHRASE) == data
    assert sealed.unseal(blob, PASSPHRASE.encode()) == data
    assert sealed.unseal(sealed.seal(b"", PASSPHRASE), PASSPHRASE) == b""


def test_the_header_says_how_it_was_sealed_and_each_seal_is_fresh() -> None:
    first, second = sealed.seal(b"k", PASSPHRASE), sealed.seal(b"k", PASSPHRASE)
    header, raw = sealed.read_header(first)
    assert header["format"] == "hdh-sealed" and header["version"] == 1
    assert header["aead"] == "chacha20poly1305"
    assert header["kdf"]["name"] == "scrypt"
    assert header["kdf"]["n"] >= 2**15 and header["kdf"]["r"] == 8 and header["kdf"]["p"] == 1
    assert len(base64.b64decode(header["kdf"]["salt"])) == 16
    assert len(base64.b64decode(header["nonce"])) == 12
    assert raw.endswith(b"\n") and first.startswith(raw)
    other, _ = sealed.read_header(second)
    assert other["kdf"]["salt"] != header["kdf"]["salt"] and other["nonce"] != header["nonce"]
    assert first[len(raw) :] != second[len(raw) :]


def test_a_passphrase_in_another_unicode_form_is_the_same() -> None:
    blob = sealed.seal(b"k", "caf\u00e9")  # é as one code point
    assert sealed.unseal(blob, "cafe\u0301") == b"k"  # e + combining acute


def test_a_wrong_passphrase_is_refused_in_one_line() -> None:
    blob = sealed.seal(b"key", PASSPHRASE)
    with pytest.raises(sealed.WrongPassphrase, match="wrong passphrase") as err:
        sealed.unseal(blob, PASSPHRASE + " ")
    assert "\n" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize("empty", ["", b""])
def test_an_empty_passphrase_is_refused(empty: str | bytes) -> None:
    with pytest.raises(sealed.SealedError, match="passphrase is empty"):
        sealed.seal(b"key", empty)
    with pytest.raises(sealed.SealedError, match="passphrase is empty"):
        sealed.unseal(sealed.seal(b"key", PASSPHRASE), empty)


def test_every_altered_byte_is_refused() -> None:
    """Each byte of the header and of the ciphertext, flipped in turn: always a SealedError
    (header alterations before any key is derived, the rest by the AEAD's tag)."""
    blob = sealed.seal(b"0123456789", PASSPHRASE)
    for i in range(len(blob)):
        altered = bytearray(blob)
        altered[i] ^= 0x01
        with pytest.raises(sealed.SealedError):
            sealed.unseal(bytes(altered), PASSPHRASE)
    for damaged in (blob[:-1], blob + b"\x00", blob[:10], b"", b"not sealed\n"):
        with pytest.raises(sealed.SealedError):
            sealed.unseal(damaged, PASSPHRASE)


def _with_header(blob: bytes, **changes: object) -> bytes:
    header, raw = sealed.read_header(blob)
    header["kdf"].update(changes)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n"
    return text.encode() + blob[len(raw) :]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n": 2**30}, "power of two from 2\\*\\*15 to 2\\*\\*20"),  # 1 TiB of memory
        ({"n": 2**14}, "power of two"),  # weaker than this code ever writes
        ({"n": 32767}, "power of two"),
        ({"r": 1000}, "r and p"),
        ({"p": 0}, "r and p"),
        ({"n": "32768"}, "power of two"),
        ({"salt": "AAAA"}, "salt is 3 bytes"),
    ],
)
def test_a_header_out_of_bounds_is_refused_before_any_derivation(
    changes: dict[str, object], message: str
) -> None:
    blob = _with_header(sealed.seal(b"k", PASSPHRASE), **changes)
    with pytest.raises(sealed.NotSealed, match=message):
        sealed.unseal(blob, PASSPHRASE)


def test_a_non_canonical_header_is_refused() -> None:
    blob = sealed.seal(b"k", PASSPHRASE)
    _, raw = sealed.read_header(blob)
    spaced = json.dumps(json.loads(raw), sort_keys=True).encode() + b"\n"
    with pytest.raises(sealed.NotSealed, match="canonical"):
        sealed.unseal(spaced + blob[len(raw) :], PASSPHRASE)
    with pytest.raises(sealed.NotSealed, match="version 2"):
        sealed.unseal(raw.replace(b'"version":1', b'"version":2') + blob[len(raw) :], PASSPHRASE)


def test_the_clear_key_never_appears_in_a_sealed_file(tmp_path: Path) -> None:
    create_keys(tmp_path / "keys")
    sealed_files = sealed.seal_folder(tmp_path / "keys", tmp_path / "sealed", PASSPHRASE)
    assert sorted(p.name for p in sealed_files) == ["foin1.key.sealed", "foin2.key.sealed"]
    for path in sealed_files:
        key = (tmp_path / "keys" / path.name.removesuffix(".sealed")).read_bytes()
        blob = path.read_bytes()
        for form in (key, key.strip(), base64.b64encode(key)):
            assert form not in blob
        try:
            raw = bytes.fromhex(key.decode().strip())
        except ValueError:
            raw = base64.b64decode(key.strip())
        assert raw not in blob and raw.hex().encode() not in blob
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restored = sealed.unseal_folder(tmp_path / "sealed", tmp_path / "restored", PASSPHRASE)
    for path in restored:
        assert path.read_bytes() == (tmp_path / "keys" / path.name).read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unsealing_a_folder_writes_nothing_unless_every_file_unseals(tmp_path: Path) -> None:
    create_keys(tmp_path / "keys")
    sealed.seal_folder(tmp_path / "keys", tmp_path / "sealed", PASSPHRASE)
    second = tmp_path / "sealed" / "foin2.key.sealed"
    second.write_bytes(second.read_bytes()[:-1] + bytes([second.read_bytes()[-1] ^ 1]))
    with pytest.raises(sealed.WrongPassphrase, match="foin2.key.sealed: cannot unseal"):
        sealed.unseal_folder(tmp_path / "sealed", tmp_path / "restored", PASSPHRASE)
    assert not (tmp_path / "restored").exists()
    with pytest.raises(sealed.WrongPassphrase):
        sealed.unseal_file(tmp_path / "sealed" / "foin1.key.sealed", tmp_path / "k", "wrong")
    assert not (tmp_path / "k").exists()


def test_nothing_is_overwritten_and_links_are_refused(tmp_path: Path) -> None:
    create_keys(tmp_path / "keys")
    sealed.seal_folder(tmp_path / "keys", tmp_path / "sealed", PASSPHRASE)
    with pytest.raises(sealed.SealedError, match="exists already"):
        sealed.seal_folder(tmp_path / "keys", tmp_path / "sealed", PASSPHRASE)
    (tmp_path / "restored").mkdir()
    (tmp_path / "restored" / "foin1.key").write_text("other")
    with pytest.raises(sealed.SealedError, match="exists already"):
        sealed.unseal_folder(tmp_path / "sealed", tmp_path / "restored", PASSPHRASE)
    assert (tmp_path / "restored" / "foin1.key").read_text() == "other"
    assert not (tmp_path / "restored" / "foin2.key").exists()
    (tmp_path / "keys" / "link.key").symlink_to("/etc/passwd")
    with pytest.raises(sealed.SealedError, match="not a plain file"):
        sealed.seal_folder(tmp_path / "keys", tmp_path / "sealed2", PASSPHRASE)
