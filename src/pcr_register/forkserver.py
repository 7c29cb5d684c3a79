"""`pcr-register fork-server --socket PATH`: one process that has imported the register and parsed the spec
files once, and forks a fresh register for each client (the self-test starts one register per fault run).

A register started on its own spends most of its start-up importing (uvicorn, jsonschema, cryptography) and
parsing the spec files; the self-test starts one per run, about 140. The fork server does both once, then
serves no request itself. Each client connects to the Unix socket PATH and sends one JSON line
``{"argv": ["serve", ...], "env": {...}, "cwd": "..."}``: the arguments, environment and working folder the
register would have had as a process of its own. The server forks a child for it, which

- takes the connection as its standard input, output and error and starts a session of its own;
- replaces its environment with the request's (PCR_REGISTER_FAULTS, PCR_REGISTER_VARIANT, PCR_SPECS_DIR, the
  deadlines: everything the register reads) and changes to its folder;
- writes ``pcr-register-fork: pid N``, then runs ``pcr-register serve`` with the request's arguments: the same
  code as a register started on its own, its first line ``listening on https://HOST:PORT``;
- stops as on SIGTERM when the client closes its side of the connection or dies.

When the child has ended, the server writes ``pcr-register-fork: exit N`` (N as a subprocess' returncode:
-15 after SIGTERM) and closes the connection. Children share nothing: each is a fork of a server that has
only imported modules and parsed the spec files (validation.load_specs reparses a folder whose files
changed). The server ends when its standard input reaches end of file (whoever started it closed it or
died) or on SIGTERM; a child keeps serving its client until the client closes. Linux only (os.fork,
os.pidfd_open).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

CONTROL = "pcr-register-fork: "  # the prefix of the lines the fork server and its children add to the output
REQUEST_TIMEOUT_S = 10.0  # a client sends its request line at once; one that does not is dropped
MAX_REQUEST_BYTES = 1024 * 1024  # an environment is a few kB


class ForkServerError(RuntimeError):
    """The fork server cannot run here (not Linux, or the socket cannot be made)."""


def available() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(os, "pidfd_open")


def preload() -> None:
    """What every register's start-up repeats: the serve command's imports and the spec files of the
    environment's contract ($PCR_SPECS_DIR, else the checkout's or the installed ones)."""
    from pcr_register import server, state, validation  # noqa: F401 - imported for the children
    from pcr_register.config import SpecsNotFound, default_specs_dir
    from pcr_register.routes import check_specs

    try:
        specs_dir = default_specs_dir()
    except SpecsNotFound:
        return  # each child reports it as `serve` would
    with contextlib.suppress(Exception):  # a broken spec file is reported by each child, as by `serve`
        check_specs(validation.load_specs(specs_dir))


def serve_forks(socket_path: Path, main: Callable[[list[str]], int]) -> int:
    """Accept clients on `socket_path` and fork a register for each, `main(argv)` in the child (cli.main: the
    command line), until stdin closes or SIGTERM."""
    if not available():
        raise ForkServerError("the fork server needs Linux (os.fork and os.pidfd_open)")
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(socket_path))
    except OSError as exc:
        listener.close()
        raise ForkServerError(f"cannot listen on {socket_path}: {exc}") from exc
    os.chmod(socket_path, 0o600)  # only this user's processes may ask for a register
    listener.listen(64)
    stop_r, stop_w = os.pipe()
    previous = signal.signal(signal.SIGTERM, lambda *_: os.write(stop_w, b"x"))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    selector.register(stop_r, selectors.EVENT_READ, "stop")
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
    # The children inherit this heap: frozen, it is left out of their garbage collections (the register's
    # memory trimmer collects every 2 s), which would otherwise traverse it and copy every page they touch.
    gc.collect()
    gc.freeze()
    print(f"{CONTROL}ready {socket_path}", flush=True)
    try:
        while True:
            for key, _events in selector.select():
                if key.data == "stop" or (key.data == "stdin" and not os.read(key.fd, 4096)):
                    return 0
                if key.data == "accept":
                    try:
                        conn, _addr = listener.accept()
                    except OSError:
                        continue
                    # What the child must not keep open: another child's connection held open would keep
                    # that client from seeing its register end.
                    inherited = [listener, selector, stop_r, stop_w, *children, *(c for _p, c in children.values())]
                    try:
                        pid = os.fork()
                    except OSError as exc:
                        with contextlib.suppress(OSError):
                            conn.sendall(f"pcr-register fork-server: error: cannot fork: {exc}\n".encode())
                        conn.close()
                        continue
                    if pid == 0:
                        _child(conn, inherited, main)
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = (pid, conn)
                    selector.register(pidfd, selectors.EVENT_READ, "child")
                elif key.data == "child":
                    pid, conn = children.pop(key.fd)
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    _pid, status = os.waitpid(pid, 0)
                    with contextlib.suppress(OSError):
                        conn.sendall(f"{CONTROL}exit {os.waitstatus_to_exitcode(status)}\n".encode())
                    conn.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()
        with contextlib.suppress(OSError):
            socket_path.unlink()
        for pidfd, (_pid, conn) in children.items():  # running registers keep serving; their exit goes unsaid
            os.close(pidfd)
            conn.close()


def _child(conn: socket.socket, inherited: list[Any], main: Callable[[list[str]], int]) -> NoReturn:
    """In the forked child: the connection as stdio, the request's environment, `pcr-register serve`."""
    code = 70
    try:
        for thing in inherited:  # sockets and the selector by their close(), descriptors by os.close
            with contextlib.suppress(OSError):
                if isinstance(thing, int):
                    os.close(thing)
                else:
                    thing.close()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # as start_new_session: a Ctrl-C of the client's terminal is for the client
        request = _read_request(conn)
        for fd in (0, 1, 2):
            os.dup2(conn.fileno(), fd)
        conn.close()
        # New text streams over the new descriptors: the server's may have been locked at the fork.
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        print(f"{CONTROL}pid {os.getpid()}", flush=True)
        threading.Thread(target=_stop_when_the_client_leaves, daemon=True).start()
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException:  # noqa: BLE001 - the child must end here, with a code, whatever happened
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _read_request(conn: socket.socket) -> dict[str, Any]:
    """The client's one JSON line; anything else ends the child (exit 2) with the reason on the connection."""
    conn.settimeout(REQUEST_TIMEOUT_S)
    data = b""
    while b"\n" not in data and len(data) < MAX_REQUEST_BYTES:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.settimeout(None)
    try:
        request = json.loads(data.split(b"\n", 1)[0])
        argv, env, cwd = request["argv"], request["env"], request["cwd"]
        valid = (isinstance(argv, list) and argv[:1] == ["serve"] and all(isinstance(a, str) for a in argv)
                 and isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
                 and isinstance(cwd, str))
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        with contextlib.suppress(OSError):
            conn.sendall(b"pcr-register fork-server: error: the request must be one JSON line "
                         b'{"argv": ["serve", ...], "env": {NAME: VALUE}, "cwd": FOLDER}\n')
        os._exit(2)
    return request


def _stop_when_the_client_leaves() -> None:
    """The client closed its side, or died: stop as `serve` does on SIGTERM (uvicorn's graceful stop)."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    os.kill(os.getpid(), signal.SIGTERM)
