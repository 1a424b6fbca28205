"""Processes that must not outlive a SIGKILLed owner: reaped children, and vLLM's engine processes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emoreason.parent_watch import child_processes, is_alive, process_identity

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

REPO = Path(__file__).resolve().parents[1]

# An owner that starts a child which knows nothing of it (as vLLM's engine core does), then a reaper.
OWNER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from emoreason.parent_watch import process_identity, start_reaper
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    reaper = start_reaper([process_identity(child.pid)], poll_seconds=0.1)
    print(json.dumps({"child": child.pid, "reaper": reaper.pid}), flush=True)
    if sys.argv[1] == "clean":
        child.kill(); child.wait()  # a clean shutdown: the reaper leaves on its own
    time.sleep(600)
    """
)


def start_owner(mode: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, mode], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def wait_dead(identities, seconds: float) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(is_alive(i) for i in identities):
        time.sleep(0.05)
    return [i for i in identities if is_alive(i)]


def test_reaper_kills_the_children_of_a_sigkilled_owner():
    proc, pids = start_owner("kill")
    watched = [process_identity(pids["child"]), process_identity(pids["reaper"])]
    try:
        assert all(is_alive(i) for i in watched)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not wait_dead(watched, 10), "child or reaper alive 10 s after the owner was killed"
    finally:
        for pid, _ in watched:
            if is_alive(process_identity(pid)):
                os.kill(pid, signal.SIGKILL)


def test_reaper_leaves_once_its_children_are_gone():
    proc, pids = start_owner("clean")
    try:
        assert not wait_dead([process_identity(pids["reaper"])], 10)
        assert proc.poll() is None  # the owner itself is untouched
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_or_a_reused_pid_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)  # exited but not reaped: still listed in /proc, as a zombie
    assert not is_alive(identity)
    child.wait()
    assert is_alive(process_identity(os.getpid())) and not is_alive((os.getpid(), "1"))  # another start time: another process


VLLM_OWNER = textwrap.dedent(
    """
    import os, sys, time
    if __name__ == "__main__":
        from emoreason.serving.vllm_engine import VLLMEngine
        engine = VLLMEngine(sys.argv[1], max_batch_size=4)
        print("ready", flush=True)
        time.sleep(600)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_engine_processes_die_with_a_sigkilled_server(tiny_data, tmp_path_factory, tmp_path):
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    from serving_models import exported_model_dir

    script = tmp_path / "owner.py"  # vLLM starts its engine with spawn: the main module must be importable
    script.write_text(VLLM_OWNER)
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(exported_model_dir(tiny_data, tmp_path_factory))],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    below = []
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        assert proc.poll() is None, "the vLLM engine did not start"
        below = child_processes(proc.pid)
        assert len(below) >= 2, below  # vLLM's engine core (and its worker), our reaper
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        survivors = wait_dead(below, 10)
        assert not survivors, f"alive 10 s after the server was killed: {survivors}"
    finally:
        if proc.poll() is None:
            below += child_processes(proc.pid)
            proc.kill()
            proc.wait()
        for identity in below:
            if is_alive(identity):
                os.kill(identity[0], signal.SIGKILL)
