"""Network guard for the test suite, loaded by every Python process that has this folder on
PYTHONPATH (the tests put it there for the snakemake runs they start).

Any attempt to resolve or connect to an address outside this machine is refused and written
to the file named by VICOKD_NETGUARD_LOG, so a test can fail on it even when the code under
test swallowed the exception (as ultralytics and huggingface_hub do)."""

import os
import socket

_LOG = os.environ.get("VICOKD_NETGUARD_LOG")
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")


def _is_local(host) -> bool:
    return host is None or str(host).startswith(_LOCAL) or str(host) == ""


def _refuse(what: str):
    if _LOG:
        with open(_LOG, "a") as fh:
            fh.write(f"{os.getpid()} {what}\n")
    raise OSError(f"network access blocked by the vicokd test guard: {what}")


_orig_connect = socket.socket.connect
_orig_connect_ex = socket.socket.connect_ex
_orig_getaddrinfo = socket.getaddrinfo


def _connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"connect {address!r}")
    return _orig_connect(self, address)


def _connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"connect {address!r}")
    return _orig_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        _refuse(f"resolve {host!r}")
    return _orig_getaddrinfo(host, *args, **kwargs)


def install():
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.getaddrinfo = _getaddrinfo


if os.environ.get("VICOKD_NETGUARD") == "1":
    install()
