"""Benchmark: does one huge text request hold up a small one? The real server and hf engine on 127.0.0.1.

    .venv/bin/python scripts/bench_server_fairness.py [--workdir runs/bench_server_fairness] [--big-mib 20] [--repeats 3]

Prints one JSON object; nothing is asserted. The model is the exported tiny model bench_serve.py
builds (re-used when the workdir has it). Each round sends a `--big-mib` MiB text-only request (under the
server's 64 MiB body limit) and, 50 ms later, a small request (a clip and a short question,
2 new tokens), and reports both latencies and the big one's answer. The small request alone is the
baseline. A server that tokenized the big text under the shared media lock made the small request
wait for it (64 s for 20 MiB); the prompt-length check now refuses the big one from its byte count
before any tokenizing or media work.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from emoreason.labels import RECOGNITION_PROMPT  # noqa: E402

QUESTION = RECOGNITION_PROMPT.format(labels="angry, happy, sad, surprised")


class Server:
    """uvicorn on a free 127.0.0.1 port in a thread."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def post(url: str, body: bytes) -> dict:
    import httpx

    start = time.perf_counter()
    response = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}, timeout=600)
    out = {"status": response.status_code, "latency_s": round(time.perf_counter() - start, 3)}
    if response.status_code != 200:
        out["code"] = response.json()["error"]["code"]
        out["message"] = response.json()["error"]["message"][:160]
    return out


def one_round(url: str, big: bytes, small: bytes) -> dict:
    results: dict[str, dict] = {}

    def send(name: str, body: bytes, delay: float) -> None:
        time.sleep(delay)
        results[name] = post(url, body)

    threads = [threading.Thread(target=send, args=("big", big, 0.0)), threading.Thread(target=send, args=("small", small, 0.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench_server_fairness"))
    parser.add_argument("--big-mib", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    # Training logs print to stdout: point fd 1 at stderr for the run, so stdout carries the JSON alone.
    json_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)

    from bench_serve import build_model

    from emoreason.serving.hf_engine import HFEngine
    from emoreason.serving.server import ServerSettings, create_app

    export, clips, _ = build_model(Path(args.workdir), num_per_class=2)
    engine = HFEngine(export, max_batch_size=8)
    clip = "data:video/mp4;base64," + base64.b64encode(clips[0].read_bytes()).decode()
    small = json.dumps(
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}, {"type": "video_url", "video_url": {"url": clip}}]}],
            "max_tokens": 2,
        }
    ).encode()
    text = ("she said she was fine, but her voice shook. " * (int(args.big_mib * 2**20) // 44 + 1))[: int(args.big_mib * 2**20)]
    big = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 2}).encode()

    with Server(create_app(engine, ServerSettings())) as url:
        post(url, small)  # warm-up: encoders and face detector loaded, first generate done
        alone = [post(url, small)["latency_s"] for _ in range(args.repeats)]
        rounds = [one_round(url, big, small) for _ in range(args.repeats)]

    print(
        json.dumps(
            {
                "big_request_bytes": len(big),
                "small_alone_s": {"median": statistics.median(alone), "max": max(alone)},
                "small_beside_big_s": {
                    "median": statistics.median(r["small"]["latency_s"] for r in rounds),
                    "max": max(r["small"]["latency_s"] for r in rounds),
                },
                "big_s": {"median": statistics.median(r["big"]["latency_s"] for r in rounds), "max": max(r["big"]["latency_s"] for r in rounds)},
                "big_answer": {k: rounds[-1]["big"].get(k) for k in ("status", "code", "message")},
                "small_statuses": sorted({r["small"]["status"] for r in rounds}),
                "goal_small_under_s": 2.0,
                "rounds": rounds,
            },
            indent=2,
        ),
        file=json_out,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
