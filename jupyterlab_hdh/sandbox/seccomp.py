"""The sandbox's seccomp filter: kernel interfaces no analysis needs, refused with EPERM.

Owns the classic-BPF program bwrap loads (``--seccomp FD``) before it runs the
sandbox's server. A deny-list, not an allow-list: Python, Jupyter, PyArrow,
DuckDB, Polars and Spark use hundreds of ordinary syscalls; what is refused
here are the ones that reach kernel code a notebook never needs and that
sandbox escapes and kernel exploits favour (security anchors §3: bwrap is
"not a complete, ready-made sandbox"):

* other processes' memory and the kernel's: ``ptrace``, ``process_vm_*``,
  ``kcmp``, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``;
* keyrings: ``keyctl``, ``add_key``, ``request_key``;
* mounts and namespaces: ``mount`` and the new mount API, ``pivot_root``,
  ``unshare``, ``setns`` (bwrap's ``--disable-userns`` already stops nested
  user namespaces; this stops the rest at the door);
* the machine: modules, ``kexec``, ``reboot``, ``swapon``, clocks, host and
  domain names, ``syslog``, ``acct``, ``quotactl``, raw I/O ports;
* file handles that bypass path checks: ``open_by_handle_at``;
* socket families other than Unix, IPv4/IPv6 (loopback only: the sandbox has
  no network) and netlink (glibc's getaddrinfo asks it): no packet sockets, no
  kernel crypto API (``AF_ALG``), no vsock, no Bluetooth — ``EAFNOSUPPORT``;
* on x86-64, every 32-bit (``int 0x80``) and x32 system call.

Syscall numbers come from the kernel headers (``asm/unistd_64.h`` for
x86-64, ``asm-generic/unistd.h`` for aarch64); a test cross-checks them with
the headers when they are installed. On any other architecture there is no
filter (:func:`program` returns None) and the sandbox says so in its limits.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

#: Denied system calls, by name (the kernel's ``__NR_`` names).
DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "fanotify_init",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "sethostname",
    "setdomainname",
    "syslog",
    "quotactl",
    "iopl",
    "ioperm",
    "uselib",
    "vhangup",
    "lookup_dcookie",
    "nfsservctl",
    "clock_settime",
    "settimeofday",
    "clock_adjtime",
    "adjtimex",
)

#: Socket families a sandbox may open: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK.
ALLOWED_SOCKET_FAMILIES = (1, 2, 10, 16)

# From the kernel headers (see the module docstring); absent names do not exist there.
_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "userfaultfd": 323,
    "perf_event_open": 298, "fanotify_init": 300, "mount": 165, "umount2": 166,
    "pivot_root": 155, "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442, "unshare": 272, "setns": 308,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_by_handle_at": 304, "name_to_handle_at": 303, "acct": 163,
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171,
    "syslog": 103, "quotactl": 179, "iopl": 172, "ioperm": 173, "uselib": 134, "vhangup": 153,
    "lookup_dcookie": 212, "nfsservctl": 180, "clock_settime": 227, "settimeofday": 164,
    "clock_adjtime": 305, "adjtimex": 159, "socket": 41,
}  # fmt: skip
_AARCH64 = {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
    "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "userfaultfd": 282,
    "perf_event_open": 241, "fanotify_init": 262, "mount": 40, "umount2": 39, "pivot_root": 41,
    "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "unshare": 97, "setns": 268, "kexec_load": 104,
    "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_by_handle_at": 265, "name_to_handle_at": 264, "acct": 89, "swapon": 224,
    "swapoff": 225, "reboot": 142, "sethostname": 161, "setdomainname": 162, "syslog": 116,
    "quotactl": 60, "vhangup": 58, "lookup_dcookie": 18, "nfsservctl": 42,
    "clock_settime": 112, "settimeofday": 170, "clock_adjtime": 266, "adjtimex": 171,
    "socket": 198,
}  # fmt: skip

#: machine → (AUDIT_ARCH_*, syscall table, lowest number that is not a native call)
ARCHES: dict[str, tuple[int, dict[str, int], int | None]] = {
    "x86_64": (0xC000003E, _X86_64, 0x40000000),  # x32 calls have bit 30 set
    "aarch64": (0xC00000B7, _AARCH64, None),
}

# classic BPF (linux/filter.h, linux/seccomp.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data (little-endian low word)


def _assemble(code: list[tuple[int, str | int, str | int, int]]) -> bytes:
    """``(op, jt, jf, k)`` rows whose jump targets may be labels (``"@name"`` rows)."""
    labels: dict[str, int] = {}
    rows: list[tuple[int, str | int, str | int, int]] = []
    for row in code:
        if row[0] == -1:  # a label
            labels[str(row[1])] = len(rows)
        else:
            rows.append(row)
    out = []
    for i, (op, jt, jf, k) in enumerate(rows):

        def rel(target: str | int, i: int = i) -> int:
            if isinstance(target, int):
                return target
            offset = labels[target] - i - 1
            if not 0 <= offset <= 255:
                raise ValueError(f"seccomp program: jump to {target} out of range")
            return offset

        out.append(struct.pack("<HBBI", op, rel(jt), rel(jf), k))
    return b"".join(out)


def program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this one), or None where there is none."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, table, foreign_from = arch
    code: list[tuple[int, str | int, str | int, int]] = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 0, "eperm", audit_arch),  # another ABI (i386 on x86-64): refused
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if foreign_from is not None:
        code.append((_JGE_K, "eperm", 0, foreign_from))
    for name in DENIED:
        if name in table:
            code.append((_JEQ_K, "eperm", 0, table[name]))
    code += [
        (_JEQ_K, "socket", 0, table["socket"]),
        (_RET_K, 0, 0, RET_ALLOW),
        (-1, "socket", 0, 0),
        (_LD_W_ABS, 0, 0, _OFF_ARG0),
        *[(_JEQ_K, "allow", 0, family) for family in ALLOWED_SOCKET_FAMILIES],
        (_RET_K, 0, 0, RET_ERRNO | errno.EAFNOSUPPORT),
        (-1, "allow", 0, 0),
        (_RET_K, 0, 0, RET_ALLOW),
        (-1, "eperm", 0, 0),
        (_RET_K, 0, 0, RET_ERRNO | errno.EPERM),
    ]
    return _assemble(code)


def program_fd(machine: str | None = None) -> int | None:
    """A file descriptor (inheritable, at offset 0) holding the filter, for ``bwrap
    --seccomp FD``; None where there is no filter. The caller closes it."""
    data = program(machine)
    if data is None:
        return None
    fd = os.memfd_create("hdh-seccomp", 0)  # no MFD_CLOEXEC: bwrap inherits it
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def describe(machine: str | None = None) -> str:
    m = machine or platform.machine()
    if m not in ARCHES:
        return f"seccomp: none (no filter for {m})"
    return f"seccomp: {len(DENIED)} syscalls and foreign socket families refused ({m})"
