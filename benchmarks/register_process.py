"""The register process of benchmarks/register.py: `pcr-register init` + `export-pool` once, then `serve` on a
free port (as often as the benchmark restarts it), and clients with the pool's certificates."""

from __future__ import annotations

import json
import queue
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class BenchmarkError(RuntimeError):
    pass


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pcr-register")
    if script.exists():
        return [str(script)]
    found = shutil.which("pcr-register")
    if not found:
        raise BenchmarkError("pcr-register not found (pip install -e . into this Python)")
    return [found]


@dataclass(frozen=True)
class Register:
    url: str
    data_dir: Path
    db: str  # the SQLite file or the postgresql:// URL
    pool: dict[str, Any]
    process: subprocess.Popen[str]


def prepare(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """init + export-pool: (data dir, pool)."""
    data_dir, pool_path = workdir / "data", workdir / "pool.json"
    subprocess.run([*_cli(), "init", str(data_dir)], check=True, capture_output=True, text=True)
    subprocess.run([*_cli(), "export-pool", "--data", str(data_dir), "--output", str(pool_path)],
                   check=True, capture_output=True, text=True)
    return data_dir, json.loads(pool_path.read_text())


@contextmanager
def running_register(workdir: Path, data_dir: Path, pool: dict[str, Any], db: str) -> Iterator[Register]:
    """serve on a free port; the first stdout line gives the URL (interfaces.md §7)."""
    log = (workdir / "serve.stderr").open("w")
    proc = subprocess.Popen(
        [*_cli(), "serve", "--data", str(data_dir), "--port", "0", "--db", db],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:  # keep reading so the server never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        try:
            first = lines.get(timeout=60).strip()
        except queue.Empty:
            raise BenchmarkError("pcr-register serve printed nothing within 60 s") from None
        prefix = "listening on "
        if not first.startswith(prefix):
            raise BenchmarkError(f"unexpected first line of pcr-register serve: {first!r}")
        yield Register(first[len(prefix):].rstrip("/"), data_dir, db, pool, proc)
    except BaseException:
        log.flush()
        tail = (workdir / "serve.stderr").read_text()[-3000:]
        if tail:
            print(f"--- pcr-register serve stderr (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def client_for(register: Register, org: str, role: str) -> httpx.Client:
    # httpx 0.28: the client certificate must be in the SSLContext given as verify=.
    pair = register.pool["organisations"][org]["certificates"][role]
    ctx = ssl.create_default_context(cafile=register.pool["ca_bundle"])
    ctx.load_cert_chain(pair["cert"], pair["key"])
    return httpx.Client(base_url=register.url, verify=ctx, timeout=httpx.Timeout(120.0))


def owner_of(register: Register, org: str) -> dict[str, Any]:
    return pool_owner(register.pool, org)


def pool_owner(pool: dict[str, Any], org: str) -> dict[str, Any]:
    o = pool["organisations"][org]
    owner = {"idCodeType": o["idCodeType"], "idCode": o["idCode"]}
    if o.get("countryCode"):
        owner["countryCode"] = o["countryCode"]
    return owner



