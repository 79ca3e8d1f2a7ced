"""The guard for every program, not only Python: run a command in a network namespace of its
own, where loopback is the only interface and no route leads off the machine, so any socket
(Python's, chromium's, a C library's) fails at once with "Network is unreachable".

`unshare --net` (util-linux) makes the namespace, as root or, elsewhere, inside a user
namespace (`--map-root-user`) where the kernel allows one; `ip` (Debian's iproute2) brings its
loopback up. Where neither works the command runs as it is and only the Python guard
(sitecustomize.py) watches it; `reason()` says why. VICOKD_NETNS=0 switches namespaces off."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[tuple[str, ...] | None, str]:
    """(the command prefix, "") where a namespace can be made, else (None, why not)."""
    if os.environ.get("VICOKD_NETNS") == "0":
        return None, "VICOKD_NETNS=0"
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return None, "`unshare` (util-linux) or `ip` (iproute2) is not installed"
    user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]
    prefix = (unshare, "--net", *user_ns, "--", "sh", "-c", f'{ip} link set lo up && exec "$@"',
              "vicokd-netns")
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot make a network namespace: {exc}"
    if probe.returncode != 0:
        return None, f"cannot make a network namespace: {probe.stderr.strip() or probe.returncode}"
    return prefix, ""


def available() -> bool:
    return _probe()[0] is not None


def reason() -> str:
    """Why no namespace can be made here ("" when one can)."""
    return _probe()[1]


def isolated(cmd) -> list[str]:
    """`cmd` run in a fresh network namespace where one can be made, else `cmd` unchanged."""
    prefix = _probe()[0]
    return [*prefix, *map(str, cmd)] if prefix else [*map(str, cmd)]
