"""Worker processes that exit when the process that owns them dies, even by SIGKILL.

A killed main process (the OOM killer sends SIGKILL) runs no cleanup, so its pool workers would
idle forever holding their memory. Linux's PR_SET_PDEATHSIG covers a worker whose parent is the
owner; a worker forked by multiprocessing's forkserver has the forkserver as its parent, and the
forkserver itself only exits once its last worker has. So workers also watch the owner's pid.

Child processes whose code is not ours (vLLM's engine core and its workers) cannot be told to
watch: `start_reaper` runs a small watcher process that kills them once their owner is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 0.5


def process_identity(pid: int) -> tuple[int, str | None]:
    """(pid, start time): a pid plus its start time names one process even after the pid is reused."""
    return pid, _start_time(pid)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # Field 2 (the command name) is in parentheses and may hold spaces; the rest follow its ")".
    return text[text.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None  # field 22, starttime


def is_alive(identity: tuple[int, str | None]) -> bool:
    """Whether the process is still running: not gone, not a zombie, not a new process on the same pid."""
    pid, started = identity
    fields = _proc_stat(pid)
    if fields is None:
        if os.path.isdir("/proc/self"):
            return False  # /proc works and has no such pid
        try:
            os.kill(pid, 0)  # no /proc (macOS): existence is all we can check
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):  # killed but not yet reaped by its own parent
        return False
    return started is None or fields[19] == started


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `sig` to this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def exit_with(owner: tuple[int, str | None], poll_seconds: float = POLL_SECONDS) -> None:
    """Make this process exit soon after `owner` (from process_identity) dies.

    Sets the parent-death signal, for a direct child, and starts a daemon thread that polls the
    owner and calls os._exit: a dead owner has no one to hand results to, and atexit handlers of
    a pool worker must not run (they would wait on queues nobody reads).
    """
    if owner[0] == os.getppid():
        set_parent_death_signal()
    if not is_alive(owner):
        os._exit(1)

    def watch() -> None:
        stopped = threading.Event()
        while not stopped.wait(poll_seconds):
            if not is_alive(owner):
                os._exit(1)

    threading.Thread(target=watch, name="emoreason-parent-watch", daemon=True).start()


def child_processes(pid: int) -> list[tuple[int, str | None]]:
    """Identities of every process below `pid` (children, grandchildren, ...), read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and (fields := _proc_stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.append(child)
                frontier.append(child)
    return [process_identity(child) for child in found]


def start_reaper(children: list[tuple[int, str | None]], poll_seconds: float = POLL_SECONDS) -> subprocess.Popen | None:
    """A watcher process that SIGKILLs `children` soon after this process dies, even by SIGKILL.

    It exits by itself once the children are gone (a clean shutdown). None when there is nothing
    to watch.
    """
    if not children:
        return None
    owner = process_identity(os.getpid())
    args = [f"{pid}:{started}" for pid, started in [owner, *children]]
    return subprocess.Popen(
        [sys.executable, "-m", "emoreason.parent_watch", str(poll_seconds), *args],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or a group kill aimed at the owner must not take the watcher first
    )


def _reap(poll_seconds: float, owner: tuple[int, str | None], children: list[tuple[int, str | None]]) -> None:
    while any(is_alive(c) for c in children):
        if not is_alive(owner):
            for child in children:
                if is_alive(child):  # the identity check: never a new process on a reused pid
                    try:
                        os.kill(child[0], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            return
        time.sleep(poll_seconds)


def _identity(text: str) -> tuple[int, str | None]:
    pid, _, started = text.partition(":")
    return int(pid), None if started in ("", "None") else started


if __name__ == "__main__":
    _reap(float(sys.argv[1]), _identity(sys.argv[2]), [_identity(a) for a in sys.argv[3:]])
