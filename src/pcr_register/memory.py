"""Keeping resident memory flat under hostile input (issue 17): glibc's allocator, bounded and trimmed.

Hostile bodies are large (a 5 MB body, 1 MB strings, 20 000-element arrays) and arrive concurrently, each
handled on one of anyio's worker threads. glibc gives each thread an arena of its own (up to 8 per core) and
keeps what a large body freed, so the resident size ratchets up to the worst concurrent peak and stays. The
register limits glibc to two arenas and hands freed pages back after a large body (malloc_trim, at most once
a second). Elsewhere than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

M_ARENA_MAX = -8  # malloc.h
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD = 256 * 1024  # fixed: glibc's dynamic threshold would rise to 5 MB and keep such bodies in the heap
LARGE_BODY_BYTES = 64 * 1024

_lock = threading.Lock()
_last_trim = 0.0


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas() -> None:
    """At most ARENAS malloc arenas for the process (call before the worker threads start)."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, ARENAS)
        _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def after_body(size: int) -> None:
    """After a request whose body was large: give freed memory back to the system (rate-limited)."""
    global _last_trim
    if _LIBC is None or size < LARGE_BODY_BYTES:
        return
    now = time.monotonic()
    with _lock:
        if now - _last_trim < 1.0:
            return
        _last_trim = now
    _LIBC.malloc_trim(0)
