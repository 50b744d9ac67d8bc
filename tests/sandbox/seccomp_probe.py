"""Probe run inside and outside a sandbox: the errno each interesting syscall gives (0 = it
worked), as one JSON object on stdout. Standard library only (runs in any Python)."""

import ctypes
import errno
import json
import os
import platform
import socket

NR = {
    "x86_64": {"ptrace": 101, "keyctl": 250, "kcmp": 312, "io_uring_setup": 425,
               "userfaultfd": 323, "process_vm_readv": 310, "unshare": 272, "getpid": 39,
               "socket": 41},
    "aarch64": {"ptrace": 117, "keyctl": 219, "kcmp": 272, "io_uring_setup": 425,
                "userfaultfd": 282, "process_vm_readv": 270, "unshare": 97, "getpid": 172,
                "socket": 198},
}[platform.machine()]  # fmt: skip
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call_nr(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if r == -1 else (0, r)


def call(name, *args):
    r = call_nr(NR[name], *args)
    if isinstance(r, int):
        return r
    if name in ("userfaultfd", "io_uring_setup", "socket"):
        os.close(r[1])
    return 0


def sock(family, kind=socket.SOCK_STREAM):
    try:
        socket.socket(family, kind).close()
        return 0
    except OSError as e:
        return e.errno


pid = os.getpid()
out = {
    "getpid": call("getpid"),
    "keyctl": call("keyctl", 0, -3),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "kcmp": call("kcmp", pid, pid, 0, 0, 0),  # KCMP_FILE of fd 0 with itself
    "process_vm_readv": call("process_vm_readv", pid, 0, 0, 0, 0, 0),
    "io_uring_setup": call("io_uring_setup", 1, 0),
    "unshare": call("unshare", 0),
    "af_packet": sock(socket.AF_PACKET, socket.SOCK_RAW),
    "af_unix": sock(socket.AF_UNIX),
    "af_inet": sock(socket.AF_INET),
    "af_netlink": sock(socket.AF_NETLINK, socket.SOCK_RAW),
    # AF_PACKET with an upper bit set: the kernel reads an int, so this is AF_PACKET to it
    "af_packet_high_bits": call("socket", (1 << 32) | socket.AF_PACKET, socket.SOCK_RAW, 0),
}


def i386_getpid():
    """getpid through the 32-bit entry (``int 0x80``, i386 number 20), in a forked child so
    a kernel without IA32 emulation (SIGSEGV) costs only the child: pid, -errno or None."""
    import mmap
    import struct

    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            page.write(bytes.fromhex("b814000000cd80c3"))  # mov eax,20; int 0x80; ret
            addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
            value = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
            os.write(w, struct.pack("i", value))
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 4)
    os.close(r)
    os.waitpid(child, 0)
    return struct.unpack("i", data)[0] if len(data) == 4 else None


if platform.machine() == "x86_64":
    X32 = 0x40000000  # x32 ABI calls: the native number with bit 30 set
    x32 = call_nr(X32 + NR["getpid"])
    out["x32_getpid"] = x32 if isinstance(x32, int) else 0
    value = i386_getpid()
    # the child's pid when it works, -EPERM when the filter refuses, None if no emulation
    out["i386_getpid"] = None if value is None else (0 if value > 0 else -value)
out["names"] = {k: errno.errorcode.get(v, "ok") for k, v in out.items() if v is not None}
print(json.dumps(out))
