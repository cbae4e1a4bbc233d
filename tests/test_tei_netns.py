"""Issue 21, section 1, end to end: a fake cloud metadata service at 100.100.100.200, inside a network namespace
this test creates (its own loopback only: no traffic leaves it), is never reached through a TEI URL a visitor
typed, neither by its address nor by a name that resolves to a public address when checked and to the metadata
service when connecting (DNS rebinding through the namespace's own hosts file, read by the real resolver).

The scenario runs in the namespace (tests/netns_metadata.py); this test creates and removes the namespace, and
skips, saying why, where namespaces are not allowed (not root, no CAP_NET_ADMIN / CAP_SYS_ADMIN, no `ip`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "tests" / "netns_metadata.py"
NETNS_ETC = Path("/etc/netns")
SCENARIO_TIMEOUT_S = 120


def _ip() -> str | None:
    return shutil.which("ip") or next((path for path in ("/usr/sbin/ip", "/sbin/ip") if os.access(path, os.X_OK)),
                                      None)


def _run(*command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def namespace():
    """A fresh network namespace with 100.100.100.200 and 93.184.215.14 on its loopback and its own hosts
    file; yields (name, hosts file path). Skips where namespaces can't be made."""
    ip = _ip()
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux only")
    if ip is None:
        pytest.skip("iproute2's `ip` is not installed (apt-get install -y iproute2)")
    name = f"tei-meta-{os.getpid()}"
    added = _run(ip, "netns", "add", name)
    if added.returncode != 0:
        pytest.skip(f"network namespaces are not allowed here (needs root / CAP_NET_ADMIN): "
                    f"`ip netns add` said {added.stderr.strip()!r}")
    made_etc = not NETNS_ETC.exists()
    folder = NETNS_ETC / name
    try:
        for step in (("link", "set", "lo", "up"), ("addr", "add", "100.100.100.200/32", "dev", "lo"),
                     ("addr", "add", "93.184.215.14/32", "dev", "lo")):
            done = _run(ip, "-n", name, *step)
            if done.returncode != 0:
                pytest.skip(f"could not set up the namespace's loopback: `ip {' '.join(step)}` said "
                            f"{done.stderr.strip()!r}")
        try:
            folder.mkdir(parents=True)
            (folder / "hosts").write_text("127.0.0.1 localhost\n", encoding="utf-8")
        except OSError as error:
            pytest.skip(f"could not write the namespace's hosts file under {NETNS_ETC}: {error}")
        probe = _run(ip, "netns", "exec", name, "true")
        if probe.returncode != 0:
            pytest.skip(f"`ip netns exec` is not allowed here: {probe.stderr.strip()!r}")
        yield name, folder / "hosts"
    finally:
        _run(ip, "netns", "del", name)
        shutil.rmtree(folder, ignore_errors=True)
        if made_etc:
            try:
                NETNS_ETC.rmdir()
            except OSError:
                pass


def test_a_typed_tei_url_never_reaches_the_metadata_service(namespace):
    name, hosts = namespace
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    env.update(PYTHONPATH=str(ROOT), HF_TOKEN="", SEARCH_TEI_TOKEN="")
    done = subprocess.run([_ip(), "netns", "exec", name, sys.executable, str(SCENARIO), str(hosts)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"the scenario failed: {done.stderr[-3000:]}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    secret = "SECRET-ram-role"

    # Inside the namespace the metadata service answers anyone: a refusal below is the check's, not the network's.
    assert seen["reachable"]["status"] == 200 and seen["reachable"]["requests"]["metadata"] == 1, seen["reachable"]

    # Typed by its address: refused when the build checks the URL, and refused again by the client at connect.
    typed = seen["typed_literal"]
    assert typed["kind"] == "address" and "100.100.100.200 is in the shared address space 100.64.0.0/10" in \
        typed["error"] and "SEARCH_ALLOW_INTERNAL_TEI_URL" in typed["error"], typed
    connect = seen["connect_literal"]
    assert connect["kind"] == "address" and "was not contacted" in connect["error"], connect
    assert connect["requests"]["metadata"] == 1, "no request of the typed URL reached the metadata service"

    # A name public when typed is used through the address checked at connect time, with its own Host header.
    assert seen["resolves_to"] == "93.184.215.14"
    named = seen["typed_name"]
    assert named["error"] is None and named["value"] == "http://tei.rebind.test", named
    assert named["scores"] == [1.0, 3.0] and named["host_headers"] == ["tei.rebind.test"], named
    assert named["requests"] == {"metadata": 1, "tei": 2}, "GET /info and POST /rerank went to the public address"

    # Rebound to the metadata service: the loaded reranker's next request and a new client are refused.
    assert seen["rebound_to"] == "100.100.100.200"
    for step in ("rebound_loaded", "rebound_new"):
        refused = seen[step]
        assert refused["kind"] == "address", (step, refused)
        assert "tei.rebind.test (100.100.100.200) is in the shared address space" in refused["error"], (step, refused)
        assert refused["requests"] == {"metadata": 1, "tei": 2}, f"{step}: nothing reached either server"

    # Controls. Internal addresses allowed: the same name reaches the metadata service, whose answer is not shown.
    allowed = seen["allowed_typed"]
    assert allowed["requests"]["metadata"] == 2 and "404" in allowed["error"], allowed
    assert secret not in allowed["error"] and "is not shown" in allowed["error"], allowed
    # The operator's own endpoint keeps today's detail: the body is quoted (so the check above can fail).
    operator = seen["operator"]
    assert operator["requests"]["metadata"] == 3 and secret in operator["error"], operator
    assert seen["metadata_paths"] == ["/latest/meta-data", "/info", "/latest/meta-data/info"], seen["metadata_paths"]
