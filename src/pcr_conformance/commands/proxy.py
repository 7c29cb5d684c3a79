"""`pcr-conformance proxy`: a stakeholder's system talks to the proxy instead of the register; at the end the
client kits judge the recording and write the same report set as `run` (docs/client-testing.md).

1. The target (default: the embedded reference register, started here) gives the upstream and its identities;
   the proxy listens with mutual TLS (by default the register's own server certificate and CA: every client
   certificate the reference CA issued is accepted) and writes OUTPUT/proxy/<target>/proxy.json: its URL, the
   CA to trust and, for the embedded register, the client certificates to use (copied to certs/).
2. Every exchange is forwarded, recorded and judged at once (a line per finding on stdout).
3. At the end (Ctrl-C / SIGTERM, --duration, or --idle-timeout seconds without a request) the recording is
   written as traffic.har and `run --recording` runs the client kits on it: OUTPUT/<kit>/<target>/ with
   summary.json, junit.xml, allure-results, html/ and a copy of traffic.har; then the verdict table and the
   exit code of `run`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from pcr_conformance import embedded, kits, readings
from pcr_conformance.cli import EXIT_ERROR, CliError, err
from pcr_conformance.commands import run as run_cmd
from pcr_conformance.errors import HarnessError
from pcr_conformance.proxy import PeerCertProtocol, Proxy, server_context
from pcr_conformance.scenario import NO_SCENARIO, load_scenario
from pcr_conformance.target import Target, load_target
from pcr_conformance.traffic import write_har

POLL_S = 0.2


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise CliError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); choose another port "
                       f"or 0 for a free one") from None
    sock.listen(1024)
    return sock


def _tls_files(args: argparse.Namespace, target: Target) -> tuple[str, str, str]:
    """(server cert, key, client CA): as given, else the embedded register's own."""
    data = Path(target.data_dir) if target.data_dir else None
    cert = args.server_cert or (str(data / "server.pem") if data else "")
    key = args.server_key or (str(data / "server.key") if data else "")
    ca = args.client_ca or (str(data / "ca.pem") if data else "")
    if not (cert and key and ca):
        raise CliError("a remote target needs --server-cert, --server-key (the proxy's own TLS certificate) and "
                       "--client-ca (the CA of the certificate your system presents)")
    for flag, path in (("--server-cert", cert), ("--server-key", key), ("--client-ca", ca)):
        if not Path(path).is_file():
            raise CliError(f"{flag} {path}: no such file")
    return cert, key, ca


def _connection_file(folder: Path, url: str, target: Target, server_ca: str) -> Path:
    """proxy.json (and certs/ for the embedded register, whose files vanish when it stops): what a client
    needs to connect."""
    folder.mkdir(parents=True, exist_ok=True)
    certs = folder / "certs"
    info: dict[str, Any] = {"url": url, "ca_bundle": server_ca, "environment": target.environment,
                            "upstream": dict(target.base_urls), "pool": target.pool, "identities": {}}
    if target.embedded:
        certs.mkdir(exist_ok=True)
        info["ca_bundle"] = str(shutil.copy(server_ca, certs / "ca.pem"))
        if target.pool:
            info["pool"] = str(shutil.copy(target.pool, folder / "pool.json"))
    for slot, ident in sorted(target.identities.items()):
        entry = {"role": ident.role, "owner": dict(ident.owner), "cert": ident.cert, "key": ident.key}
        if target.embedded:
            entry["cert"] = str(shutil.copy(ident.cert, certs / f"{slot}.pem"))
            entry["key"] = str(shutil.copy(ident.key, certs / f"{slot}.key"))
        info["identities"][slot] = entry
    path = folder / "proxy.json"
    path.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return path


def main(args: argparse.Namespace) -> int:
    try:
        target = load_target(args.target)
        scenario = load_scenario(args.scenario) if args.scenario else NO_SCENARIO
        kit_names = args.kit or [k for k in kits.available_kits() if kits.load_kit(k).side == "client"]
        for k in kit_names:
            if kits.load_kit(k).side != "client":
                raise CliError(f"--kit {k}: a register kit; the proxy judges a client, use a kit with "
                               f'side = "client" ({", ".join(kits.available_kits())})')
    except HarnessError as e:
        raise CliError(str(e)) from None
    handle = embedded.start(target) if target.embedded else None
    try:
        resolved = handle.target if handle else target
        return _serve(args, resolved, scenario, kit_names, handle)
    except HarnessError as e:
        raise CliError(str(e)) from None
    finally:
        if handle is not None:
            handle.stop()


def _serve(args: argparse.Namespace, target: Target, scenario: Any, kit_names: list[str], handle: Any) -> int:
    cert, key, ca = _tls_files(args, target)
    reading = readings.check_reading(args.contract or target.contract)
    proxy = Proxy(target=target, scenario=scenario, reading=reading, live=lambda line: print(line, flush=True))
    sock = _listen(args.host, args.port)
    url = f"https://{args.host}:{sock.getsockname()[1]}"
    folder = Path(args.output).resolve() / "proxy" / target.name
    info = _connection_file(folder, url, target, target.tls.ca_bundle or ca)
    context = server_context(cert, key, ca)
    config = uvicorn.Config(proxy.app, http=PeerCertProtocol, interface="asgi3", ws="none", lifespan="on", log_level="warning",
                            access_log=False, ssl_context_factory=lambda c, d: context, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pcr-proxy", daemon=True)
    stop = threading.Event()
    reason = ["stopped"]

    def on_signal(signum: int, frame: Any) -> None:
        reason[0] = f"stopped by {signal.Signals(signum).name}"
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    thread.start()
    print(f"proxy listening on {url} -> {target.name} ({reading} reading); connection details: {info}", flush=True)
    print(scenario.describe(), flush=True)
    started = time.monotonic()
    while not stop.wait(POLL_S):
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            reason[0] = f"--duration {args.duration:g} s over"
            break
        if args.idle_timeout and now - proxy.last_activity >= args.idle_timeout:
            reason[0] = f"no request for --idle-timeout {args.idle_timeout:g} s"
            break
    server.should_exit = True
    thread.join(timeout=10)
    for finding in proxy.finish():
        print(f"[proxy] FINDING {finding.line()}", flush=True)
    har = folder / "traffic.har"
    write_har(har, proxy.exchanges)
    print(f"[proxy] {reason[0]}: {len(proxy.exchanges)} exchanges, {len(proxy.judgement.findings)} findings; "
          f"recording {har}", flush=True)
    if handle is not None:
        handle.stop()  # the suites only read the recording
    if not proxy.exchanges:
        err("no request reached the proxy: nothing to judge (point the system at the URL above)")
        return EXIT_ERROR
    ns = argparse.Namespace(target=args.target, kit=kit_names, profile="certification", output=args.output,
                            no_html=args.no_html, mask_pii=False, timeout=args.timeout, contract=reading,
                            implementation_profile=None, recording=str(har), json=args.json)
    config = run_cmd.run_config(ns)
    outcomes = run_cmd.run_kits(config, html_notice=lambda m: print(m, flush=True))
    for o in outcomes:
        if o.folder:
            shutil.copy(har, Path(o.folder) / "traffic.har")
    return run_cmd.report_outcomes(config, outcomes, args.json)

