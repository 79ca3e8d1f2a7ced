"""The network guard holds: the Python guard refuses and records what a library would do without
its offline switch, the project's own code needs no switch, and the programs the tests start
(snakemake, chromium, the CLI) run in a network namespace with no route off the machine.

No test here sends a packet off the machine: the Python checks are refused before any system
call, and a connect is tried only inside a namespace already shown to have no route."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import netns
import sitecustomize as netguard
from conftest import NETGUARD_DIR, OFFLINE_VARS, require, workflow_env

# TEST-NET-2 (RFC 5737): documentation addresses, never a real host.
NOWHERE = "198.51.100.7"


def guarded_python(code: str, log, cwd, extra=None) -> subprocess.CompletedProcess:
    """`code` in a fresh Python with the guard from PYTHONPATH, as the workflow runs get it, the
    offline switches unset, and blocked attempts written to `log`."""
    log.touch()
    env = workflow_env({"VICOKD_NETGUARD": "1", "VICOKD_NETGUARD_LOG": str(log), **(extra or {})})
    assert not set(OFFLINE_VARS) & set(env)
    return subprocess.run(netns.isolated([sys.executable, "-c", code]), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_suite_runs_with_the_offline_switches_unset():
    env = workflow_env()
    assert not set(OFFLINE_VARS) & set(env), "the tests must not lean on the offline switches"
    assert env["VICOKD_NETGUARD"] == "1" and str(NETGUARD_DIR) in env["PYTHONPATH"]


def test_python_guard_refuses_before_the_system_call(tmp_path, monkeypatch):
    """Connect and resolve to an outside address are refused and recorded, and never reach the
    real socket calls (replaced here by recorders); loopback goes through."""
    reached = []
    monkeypatch.setattr(netguard, "_LOG", str(tmp_path / "attempts.log"))
    monkeypatch.setattr(netguard, "_orig_connect", lambda s, a: reached.append(a))
    monkeypatch.setattr(netguard, "_orig_getaddrinfo", lambda *a, **k: reached.append(a) or [])
    with socket.socket() as s, pytest.raises(OSError, match="blocked by the vicokd test guard"):
        s.connect((NOWHERE, 9))
    with pytest.raises(OSError, match="blocked by the vicokd test guard"):
        socket.getaddrinfo("example.org", 443)
    assert reached == []
    with socket.socket() as s:
        s.connect(("127.0.0.1", 9))
    socket.getaddrinfo("localhost", 9)
    assert reached == [("127.0.0.1", 9), ("localhost", 9)]
    lines = (tmp_path / "attempts.log").read_text().splitlines()
    assert len(lines) == 2 and NOWHERE in lines[0] and "example.org" in lines[1]


def test_guard_catches_a_library_without_its_offline_switch(tmp_path):
    """ultralytics checks whether it is online when imported unless YOLO_OFFLINE is set: the
    guard records it. The project's own set-up (prepare_ultralytics) needs no switch."""
    bare = guarded_python("import ultralytics", tmp_path / "bare.log", tmp_path,
                          {"YOLO_CONFIG_DIR": str(tmp_path / "bare-config")})
    assert bare.returncode == 0, bare.stderr[-2000:]
    assert "resolve" in (tmp_path / "bare.log").read_text()

    ours = guarded_python(
        "from vicokd.masks.yolo import prepare_ultralytics\n"
        "prepare_ultralytics('yolo-config')\n"
        "import ultralytics\n"
        "from transformers import ViTConfig, ViTModel\n"
        "ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,\n"
        "                   intermediate_size=64, image_size=32, patch_size=16))\n",
        tmp_path / "ours.log", tmp_path)
    assert ours.returncode == 0, ours.stderr[-2000:]
    assert (tmp_path / "ours.log").read_text() == ""


def test_programs_the_tests_start_have_no_route_off_the_machine():
    """In the namespace only loopback exists and is up, the kernel finds no route to an outside
    address, and a connect from a program that is not Python (bash's /dev/tcp) fails at once.
    Fails wherever the network is reachable from the namespace."""
    require(None if netns.available() else
            f"no network namespace can be made here ({netns.reason()}): the tests' programs "
            "are watched by the Python guard alone")

    def run(*cmd):
        return subprocess.run(netns.isolated(cmd), capture_output=True, text=True, timeout=60)

    links = run("ip", "-o", "link", "show")
    names = [ln.split(":")[1].strip().split("@")[0] for ln in links.stdout.splitlines()]
    assert links.returncode == 0 and names == ["lo"], links.stdout
    assert ",UP" in links.stdout or "<UP" in links.stdout, links.stdout
    route = run("ip", "route", "get", NOWHERE)
    assert route.returncode != 0 and "unreachable" in route.stderr.lower(), route.stdout
    # Only now, with no route shown, a real connect (it cannot leave the machine).
    conn = run("bash", "-c", f"exec 3<>/dev/tcp/{NOWHERE}/80")
    assert conn.returncode != 0 and "Network is unreachable" in conn.stderr, conn.stderr
    # Loopback works in there: a listener and a client in the same namespace.
    loop = run(sys.executable, "-c",
               "import socket\n"
               "srv = socket.create_server(('127.0.0.1', 0))\n"
               "socket.create_connection(srv.getsockname(), timeout=5).close()\n"
               "print('ok')")
    assert loop.stdout.strip() == "ok", loop.stderr
