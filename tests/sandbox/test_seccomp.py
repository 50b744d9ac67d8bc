"""The sandbox's seccomp filter: right syscall numbers, a well-formed program, and a probe
that really sees the difference (it runs unfiltered on the host here; inside a sandbox in
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


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
def test_syscall_numbers_match_the_kernel_headers(machine: str) -> None:
    path, pattern = HEADERS[machine]
    if not path.exists():
        pytest.skip(f"{path} not installed (linux-libc-dev)")
    header = {m[1]: int(m[2]) for m in re.finditer(pattern, path.read_text())}
    table = seccomp.ARCHES[machine][1]
    assert {name: header.get(name) for name in table} == table
    missing = [n for n in seccomp.DENIED if n not in table]
    assert all(n not in header for n in missing), missing  # only calls the arch lacks


@pytest.mark.parametrize("machine", sorted(seccomp.ARCHES))
def test_program_is_well_formed(machine: str) -> None:
    data = seccomp.program(machine)
    assert data is not None and len(data) % 8 == 0
    rows = [struct.unpack("<HBBI", data[i : i + 8]) for i in range(0, len(data), 8)]
    assert len(rows) < 4096  # BPF_MAXINSNS
    assert rows[0] == (0x20, 0, 0, 4)  # load the architecture first
    assert rows[1][3] == seccomp.ARCHES[machine][0]
    for i, (op, jt, jf, _k) in enumerate(rows):  # every jump lands inside the program
        if op & 0x07 == 0x05:
            assert i + 1 + max(jt, jf) < len(rows)
    assert rows[-1] == (0x06, 0, 0, seccomp.RET_ERRNO | 1)  # EPERM
    denied = {k for op, _jt, _jf, k in rows if op == 0x15}
    table = seccomp.ARCHES[machine][1]
    assert {table[n] for n in seccomp.DENIED if n in table} <= denied


def test_no_filter_where_the_numbers_are_unknown() -> None:
    assert seccomp.program("riscv64") is None
    assert "none" in seccomp.describe("riscv64")


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
    assert out["io_uring_setup"] != 1, out["names"]  # EFAULT/EINVAL, not EPERM
    if platform.machine() == "x86_64":
        # the other ABIs: int 0x80 works here (None: a kernel without IA32 emulation);
        # x32 is usually compiled out (ENOSYS). Either way never EPERM without a filter.
        assert out["i386_getpid"] in (0, None), out["names"]
        assert out["x32_getpid"] in (0, errno.ENOSYS), out["names"]
