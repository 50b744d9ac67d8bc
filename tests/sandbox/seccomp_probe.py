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
               "userfaultfd": 323, "process_vm_readv": 310, "unshare": 272, "getpid": 39},
    "aarch64": {"ptrace": 117, "keyctl": 219, "kcmp": 272, "io_uring_setup": 425,
                "userfaultfd": 282, "process_vm_readv": 270, "unshare": 97, "getpid": 172},
}[platform.machine()]  # fmt: skip
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])
    if r == -1:
        return ctypes.get_errno()
    if name in ("userfaultfd", "io_uring_setup"):
        os.close(r)
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
}
out["names"] = {k: errno.errorcode.get(v, "ok") for k, v in out.items()}
print(json.dumps(out))
