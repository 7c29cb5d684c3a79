"""The embedded target: our reference register started as a separate process, exactly as a user would.

`pcr-register init` into a temp dir, `export-pool`, `serve --port 0`; the first stdout line names the port.
The harness never imports pcr_register (ARCHITECTURE.md): they meet only at the command line, files and HTTP.
The process is stopped at the end of the session, on failure, on Ctrl-C and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from pcr_conformance import catalogue, embedded_forks, resources
from pcr_conformance import deadline as deadline_mod
from pcr_conformance.client import ssl_context
from pcr_conformance.errors import HarnessError, TargetUnreachable
from pcr_conformance.target import (
    SLOT_ROLES,
    CertificatePair,
    Identity,
    Target,
    TlsConfig,
    replace,
)

START_DEADLINE_S = 20.0
VARIANT_ENV_VAR = "PCR_REGISTER_VARIANT"  # the register's variant when the target names none

STOP_GRACE_S = 5.0
COMMAND_TIMEOUT_S = 60.0

# interfaces.md §9: identity slot -> organisation key of the register's data dir.
EMBEDDED_SLOTS: dict[str, str] = {
    "lender": "lender-a",
    "lender_extract": "lender-a",
    "second_lender": "lender-b",
    "second_lender_extract": "lender-b",
    "kela": "kela",
    "noperm_extract": "lender-noperm",
    "foreign_lender": "lender-foreign",
    "authority": "authority-full",
    "consumer_authority": "authority-consumer",
    "cic": "cic",
}

# The register's process: started by us, or forked for us by the self-test's fork server (embedded_forks.py).
RegisterProcess = subprocess.Popen[str] | embedded_forks.ForkedRegister

_LISTENING = re.compile(r"listening on (https://\S+?):(\d+)")


@dataclasses.dataclass
class EmbeddedRegister:
    """A running reference register; `target` is the resolved target (URLs, identities, pool, CA)."""

    target: Target
    process: RegisterProcess
    workdir: Path
    output: list[str]
    _stopped: bool = False

    def stop(self) -> None:
        """terminate, then kill after STOP_GRACE_S; remove the temp dir. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        _terminate(self.process)
        _RUNNING.discard(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def register_command() -> list[str]:
    """`pcr-register` beside this interpreter (the venv), else on PATH."""
    exe = Path(sys.executable).with_name("pcr-register")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("pcr-register")
    if found:
        return [found]
    raise HarnessError("pcr-register is not installed (pip install -e . puts it beside python); "
                       "the embedded target needs it")


def register_env() -> dict[str, str]:
    """The register's environment: ours, with PCR_SPECS_DIR naming the contract the harness judges against
    (resources.specs_dir(): the checkout's specs/ or the installed pcr_specs), so both read the same files."""
    env = dict(os.environ)
    env.setdefault("PCR_SPECS_DIR", str(resources.specs_dir()))
    return env


# The embedded register's database: a postgresql:// URL runs the kits against the register on PostgreSQL (an
# empty database per run: the register migrates it); unset, a fresh SQLite file in the register's work folder.
DB_ENV_VAR = "PCR_REGISTER_DB"


def embedded_database(workdir: Path) -> str:
    return os.environ.get(DB_ENV_VAR) or str(workdir / "register.sqlite3")


def start(target: Target, *, deadline_s: float = START_DEADLINE_S) -> EmbeddedRegister:
    """Start the reference register for an embedded target and return it with the resolved target."""
    cmd = register_command()
    data, pool_file, pool = prepared(cmd)
    workdir = Path(tempfile.mkdtemp(prefix="pcr-embedded-"))  # this register's database
    _install_cleanup()
    # The variant given explicitly, so that the evidence records the variant that ran.
    target = replace(target, variant=variant_of(target))
    # The environment is inherited so PCR_REGISTER_FAULTS (seeded faults, docs/concepts.md#seeded-faults) reaches the register.
    serve = ["serve", "--data", str(data), "--port", "0", "--db", embedded_database(workdir), "--variant", target.variant]
    server = os.environ.get(embedded_forks.ENV_VAR)
    if server:  # the self-test's fork server: the same command line and environment, without the start-up
        try:
            proc: RegisterProcess = embedded_forks.fork(
                server, serve, env=register_env(), deadline_s=deadline_s)
        except HarnessError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
    else:
        proc = subprocess.Popen(
            [*cmd, *serve], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=register_env(),
            start_new_session=True,  # Ctrl-C goes to us; we stop the register ourselves
            preexec_fn=die_with_parent,
        )
    _RUNNING.add(proc)
    output: list[str] = []
    started = time.monotonic()
    reg = EmbeddedRegister(target=target, process=proc, workdir=workdir, output=output)
    try:
        base = _read_base_url(proc, output, deadline_s)
        resolved = _resolve(target, base, data, pool_file, pool)
        probe(resolved, deadline_s=max(1.0, deadline_s - (time.monotonic() - started)))
        reg.target = resolved
        return reg
    except BaseException:
        reg.stop()
        raise


_PREPARED: dict[tuple[str, ...], tuple[Path, Path, dict]] = {}


def prepared(cmd: list[str]) -> tuple[Path, Path, dict]:
    """(data dir, pool file, pool) of `pcr-register init` + `export-pool`, made once per process and shared by
    every register it starts (the self-test starts one per fault; its forked runs inherit the one made before
    the fork). Safe to share: the same seed gives the same population, `serve` only reads the data dir (each
    register has its own database), and the certificates are fresh for this process. Removed at exit."""
    key = (*cmd, register_env().get("PCR_SPECS_DIR", ""))
    shared = os.environ.get(SHARED_DATA_ENV_VAR, "")
    if key not in _PREPARED and shared and (Path(shared) / "pool.json").is_file():
        # An xdist worker: the controller made the data dir (share_prepared), so every worker's register has
        # the same CA and certificates, which the report's evidence describes once.
        folder = Path(shared)
        _PREPARED[key] = (folder / "data", folder / "pool.json",
                          json.loads((folder / "pool.json").read_text(encoding="utf-8")))
    if key not in _PREPARED:
        folder = Path(tempfile.mkdtemp(prefix="pcr-embedded-data-"))
        try:
            data, pool_file = folder / "data", folder / "pool.json"
            _run([*cmd, "init", str(data)], "pcr-register init")
            _run([*cmd, "export-pool", "--data", str(data), "--output", str(pool_file)], "pcr-register export-pool")
            pool = json.loads(pool_file.read_text(encoding="utf-8"))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        owner = os.getpid()  # a forked child inherits the folder and must not remove it at its own exit
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
        _PREPARED[key] = (data, pool_file, pool)
    data, pool_file, pool = _PREPARED[key]
    return data, pool_file, json.loads(json.dumps(pool))


def prepare() -> None:
    """The data dir and the stop-at-exit of the registers this process will start, made now: from the main thread
    before another thread starts a register (load_session.py), so that the signal handlers are installed."""
    prepared(register_command())
    _install_cleanup()


SHARED_DATA_ENV_VAR = "PCR_EMBEDDED_DATA"  # set by share_prepared for the processes a session starts


def share_prepared() -> None:
    """Make the data dir now and name it in the environment, so that the processes this one starts (pytest-xdist
    workers) use it instead of each making its own CA and certificates."""
    data, _pool_file, _pool = prepared(register_command())
    os.environ[SHARED_DATA_ENV_VAR] = str(data.parent)


def unshare_prepared() -> None:
    """Undo share_prepared: later processes make their own data dir again."""
    os.environ.pop(SHARED_DATA_ENV_VAR, None)


def resolve_started(target: Target, base: str) -> Target:
    """The target as a process sees it whose register another process started at `base` from the shared data
    dir (an xdist controller: its workers started the registers)."""
    data, pool_file, pool = prepared(register_command())
    return _resolve(replace(target, variant=variant_of(target)), base, data, pool_file, pool)


def variant_of(target: Target) -> str:
    """The register variant an embedded target runs: the target's, else $PCR_REGISTER_VARIANT, else reference."""
    return target.variant or os.environ.get(VARIANT_ENV_VAR, "") or "reference"


def die_with_parent() -> None:
    """In the register's process before exec: on Linux, ask the kernel to send it SIGTERM when the harness dies,
    so a SIGKILLed pytest never leaves a register behind (atexit and signal handlers cannot run then)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=register_env())
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{what} did not finish within {COMMAND_TIMEOUT_S:g} s") from e
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise HarnessError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _read_base_url(proc: RegisterProcess, output: list[str], deadline_s: float) -> str:
    """Read stdout in a thread (a blocking readline must not hang us) until the 'listening on' line."""
    lines: queue.Queue[str | None] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=_pump, args=(proc.stdout, lines, output), daemon=True).start()
    deadline = time.monotonic() + deadline_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HarnessError(f"pcr-register serve printed no 'listening on' line within {deadline_s:g} s; "
                               f"output: {' | '.join(output[-5:]) or 'none'}")
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            if proc.poll() is not None:
                raise HarnessError(f"pcr-register serve exited with {proc.returncode}: "
                                   f"{' | '.join(output[-5:]) or 'no output'}") from None
            continue
        if line is None:
            proc.wait(timeout=STOP_GRACE_S)
            raise HarnessError(f"pcr-register serve exited with {proc.returncode}: "
                               f"{' | '.join(output[-5:]) or 'no output'}")
        m = _LISTENING.search(line)
        if m:
            return f"{m.group(1)}:{m.group(2)}"


def _pump(stream: Iterable[str], lines: queue.Queue[str | None], output: list[str]) -> None:
    # Keeps draining after start-up so the register never blocks on a full pipe; the last lines are kept for
    # error messages.
    for line in stream:
        output.append(line.rstrip())
        del output[:-50]
        lines.put(line)
    lines.put(None)


def _resolve(target: Target, base: str, data: Path, pool_file: Path, pool: dict) -> Target:
    orgs = pool.get("organisations", {})
    identities: dict[str, Identity] = {}
    for slot, org_key in EMBEDDED_SLOTS.items():
        if target.slots and slot not in target.slots:
            continue  # the target file lists fewer slots: tests needing this one are skipped (not claimed)
        org = orgs.get(org_key)
        role = SLOT_ROLES[slot]
        pair = (org or {}).get("certificates", {}).get(role)
        if not org or not pair:
            continue  # the register does not offer this identity: tests needing it are skipped
        owner = {"idCodeType": org["idCodeType"], "idCode": org["idCode"]}
        if org.get("countryCode"):
            owner["countryCode"] = org["countryCode"]
        identities[slot] = Identity(slot=slot, cert=pair["cert"], key=pair["key"], owner=owner,
                                    name=org.get("name", org_key), role=role)
    extra: dict[str, CertificatePair] = {}
    negative = pool.get("negative_certificates", {})
    for kind, key in (("expired", "expired"), ("foreign", "foreign_ca")):
        pair = negative.get(key)
        if pair:
            extra[kind] = CertificatePair(pair["cert"], pair["key"])
    if "expired" not in extra and (data / "clients" / "expired-lender-reporting.pem").is_file():
        extra["expired"] = CertificatePair(str(data / "clients" / "expired-lender-reporting.pem"),
                                           str(data / "clients" / "expired-lender-reporting.key"))
    ca = pool.get("ca_bundle") or str(data / "ca.pem")
    if target.slots:
        extra = {kind: pair for kind, pair in extra.items() if kind in target.slots}
    return replace(target, base_urls={fam: base for fam in catalogue.families()}, tls=TlsConfig(ca_bundle=ca),
                   identities=identities, extra_certificates=extra, pool=str(pool_file), data_dir=str(data),
                   environment=pool.get("environment", target.environment))


def probe(target: Target, *, deadline_s: float = START_DEADLINE_S) -> None:
    """Wait until every base URL completes a TLS handshake with a client certificate (or the deadline)."""
    ident = next(iter(target.identities.values()), None)
    ctx = ssl_context(target.tls.ca_bundle, ident.cert if ident else "", ident.key if ident else "")
    as_slot = f" (handshake as identity slot {ident.slot})" if ident else ""
    deadline = time.monotonic() + deadline_s
    for url in sorted(set(target.base_urls.values())):
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        last = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TargetUnreachable(f"{url}: no TLS handshake within {deadline_s:g} s ({last})",
                                        kind="tls" if "SSL" in last else "connect")
            try:
                step_end = time.monotonic() + min(remaining, 5.0)  # one attempt, as a whole: a watchdog ends it
                with socket.create_connection((host, port), timeout=min(remaining, 5.0)) as sock, \
                        deadline_mod.socket_deadline(sock, step_end):
                    with ctx.wrap_socket(sock, server_hostname=host) as tls:
                        tls.settimeout(max(0.01, step_end - time.monotonic()))
                        tls.do_handshake()
                break
            except ssl.SSLCertVerificationError as e:
                # Waiting will not fix a certificate the CA bundle does not trust.
                raise TargetUnreachable(f"{url}: the server certificate is not trusted by the ca_bundle "
                                        f"{target.tls.ca_bundle or '(system store)'}{as_slot}: "
                                        f"{e.verify_message or e}", kind="tls") from e
            except ssl.SSLError as e:
                if "ALERT" in str(e.reason or "").upper():
                    break  # the server is up and refuses this certificate: tlsprobe names the slot and the cause
                last = f"{type(e).__name__}: {e}"
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            except OSError as e:
                last = f"{type(e).__name__}: {e}"
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


# ---- cleanup on exit and signals -------------------------------------------------------------------------

_RUNNING: set[RegisterProcess] = set()
_CLEANUP_INSTALLED = False


def _terminate(proc: RegisterProcess) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)


def _stop_all() -> None:
    for proc in list(_RUNNING):
        _terminate(proc)
        _RUNNING.discard(proc)


def _install_cleanup() -> None:
    """atexit for normal exits; SIGTERM/SIGHUP stop the register, then take their previous course.
    Ctrl-C (SIGINT) raises KeyboardInterrupt, which runs the session's fixture finalizers and atexit."""
    global _CLEANUP_INSTALLED
    if _CLEANUP_INSTALLED:
        return
    _CLEANUP_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            _stop_all()
            if callable(previous):
                previous(signum, frame)
            else:
                # KeyboardInterrupt, not SystemExit: pytest treats it as an interrupted session (finalizers run,
                # no test is reported failed), where a SystemExit inside a test would count as a failure.
                raise KeyboardInterrupt

        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)
