"""The sandbox's seccomp filter: the generated program run on the kernel headers' numbers
(a small classic-BPF interpreter), and a probe that really sees the difference (it runs
unfiltered on the host here; inside a sandbox in
``test_attack.py::test_seccomp_refuses_kernel_interfaces``)."""

from __future__ import annotations

import errno
import json
import platform
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from jupyterlab_hdh.sandbox import seccomp
from jupyterlab_hdh.sandbox.spec import bwrap_argv

PROBE = Path(__file__).with_name("seccomp_probe.py")
NR_X86 = r"#define __NR_(\w+)\s+(\d+)"
NR_GENERIC = r"#define __NR(?:3264)?_(\w+)\s+(\d+)"
HEADERS = {
    "x86_64": (Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"), NR_X86),
    "aarch64": (Path("/usr/include/asm-generic/unistd.h"), NR_GENERIC),
}


# the headers' machine → its AUDIT_ARCH_* value (linux/audit.h)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_BIT = 0x40000000


def header_numbers(machine: str) -> dict[str, int]:
    path, pattern = HEADERS[machine]
    if not path.exists():
        pytest.skip(f"{path} not installed (linux-libc-dev)")
    return {m[1]: int(m[2]) for m in re.finditer(pattern, path.read_text())}


def run_bpf(program: bytes, arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """Run a classic-BPF seccomp program on one ``struct seccomp_data``; its return value.

    The instructions libseccomp emits (load, conditional jumps, return), and nothing else:
    an unknown one fails the test rather than being guessed at.
    """
    argv = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *argv)
    rows = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert len(rows) < 4096  # BPF_MAXINSNS
    acc, pc = 0, 0
    while True:
        op, jt, jf, k = rows[pc]
        pc += 1
        if op == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x06:  # BPF_RET | BPF_K
            return k
        elif op == 0x05:  # BPF_JMP | BPF_JA
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):  # JEQ, JGT, JGE, JSET with K
            hit = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"instruction {op:#x} not understood by this test")


ALLOW = 0x7FFF0000
EPERM = 0x00050000 | errno.EPERM
EAFNOSUPPORT = 0x00050000 | errno.EAFNOSUPPORT


@pytest.mark.parametrize("machine", sorted(AUDIT_ARCH))
def test_every_denied_call_is_refused_and_ordinary_ones_pass(machine: str) -> None:
    """Run the generated program on each syscall number the kernel headers give."""
    numbers = header_numbers(machine)
    program = seccomp.program(machine)
    assert program is not None
    arch = AUDIT_ARCH[machine]
    for name in seccomp.DENIED:
        if name in numbers:
            assert run_bpf(program, arch, numbers[name]) == EPERM, name
    for name in ("read", "write", "openat", "mmap", "clone", "execve", "getpid", "futex"):
        if name in numbers:
            assert run_bpf(program, arch, numbers[name]) == ALLOW, name
    missing = [n for n in seccomp.DENIED if n not in numbers]
    assert len(missing) < 10, missing  # only the calls this architecture lacks


@pytest.mark.parametrize("machine", sorted(AUDIT_ARCH))
def test_socket_families_beyond_the_allowed_four_are_refused(machine: str) -> None:
    socket_nr = header_numbers(machine)["socket"]
    program = seccomp.program(machine)
    assert program is not None
    arch = AUDIT_ARCH[machine]
    for family in range(0, 64):
        want = ALLOW if family in seccomp.ALLOWED_SOCKET_FAMILIES else EAFNOSUPPORT
        assert run_bpf(program, arch, socket_nr, (family,)) == want, family
    # the kernel reads an int: AF_PACKET with upper bits set would be AF_PACKET to it
    assert run_bpf(program, arch, socket_nr, ((1 << 32) | 17,)) == EAFNOSUPPORT
    assert run_bpf(program, arch, socket_nr, ((1 << 32) | 1,)) == EAFNOSUPPORT
    assert run_bpf(program, arch, socket_nr, (2**64 - 1,)) == EAFNOSUPPORT


def test_other_abis_are_refused_on_x86_64() -> None:
    program = seccomp.program("x86_64")
    assert program is not None
    getpid = header_numbers("x86_64")["getpid"]
    assert run_bpf(program, AUDIT_ARCH["x86_64"], getpid) == ALLOW
    assert run_bpf(program, AUDIT_ARCH["x86_64"], X32_BIT | getpid) == EPERM  # x32
    assert run_bpf(program, 0x40000003, 20) == EPERM  # AUDIT_ARCH_I386: int 0x80 getpid
    assert run_bpf(program, AUDIT_ARCH["aarch64"], 172) == EPERM  # any other arch


def test_no_filter_where_libseccomp_knows_no_architecture() -> None:
    assert seccomp.program("m68k") is None
    assert "none" in seccomp.describe("m68k")


def test_a_missing_libseccomp_refuses_rather_than_running_unfiltered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # as if it could not be imported
    with pytest.raises(seccomp.SeccompUnavailable, match="apt-get install libseccomp2"):
        seccomp.program_fd("x86_64")


def test_the_filter_goes_on_the_bwrap_command_line_before_the_command(tmp_path: Path) -> None:
    from tests.sandbox.conftest import make_site

    site = make_site(tmp_path)  # argv only, nothing started
    argv = bwrap_argv(site.spec("p1", "alice", [("ds_a", "v1")]), seccomp_fd=7)
    i = argv.index("--seccomp")
    assert argv[i + 1] == "7" and i < argv.index("--")


def test_the_probe_sees_these_calls_work_without_a_filter() -> None:
    out = json.loads(
        subprocess.run(
            [sys.executable, str(PROBE)], capture_output=True, text=True, check=True
        ).stdout
    )
    # unfiltered, as root here: these succeed, so EPERM in the sandbox means the filter
    for name in ("getpid", "keyctl", "kcmp", "process_vm_readv", "unshare", "af_unix"):
        assert out[name] == 0, out["names"]
    for name in ("af_packet", "af_packet_high_bits"):  # as root: a raw packet socket
        assert out[name] == 0, out["names"]
    assert out["io_uring_setup"] != 1, out["names"]  # EFAULT/EINVAL, not EPERM
    if platform.machine() == "x86_64":
        # the other ABIs: int 0x80 works here (None: a kernel without IA32 emulation);
        # x32 is usually compiled out (ENOSYS). Either way never EPERM without a filter.
        assert out["i386_getpid"] in (0, None), out["names"]
        assert out["x32_getpid"] in (0, errno.ENOSYS), out["names"]


@pytest.mark.parametrize(
    ("machine", "audit_arch", "ptrace", "getpid"),
    [("riscv64", 0xC00000F3, 117, 172), ("ppc64le", 0xC0000015, 26, 20)],
)
def test_the_other_architectures_libseccomp_knows_get_the_filter(
    machine: str, audit_arch: int, ptrace: int, getpid: int
) -> None:
    """Numbers from the kernel's tables for those architectures (no headers installed here)."""
    program = seccomp.program(machine)
    assert program is not None
    assert run_bpf(program, audit_arch, ptrace) == EPERM
    assert run_bpf(program, audit_arch, getpid) == ALLOW
    assert run_bpf(program, AUDIT_ARCH["x86_64"], 39) == EPERM  # another ABI: refused
