"""Benchmark the command line's start-up: `emoreason --help` and every `emoreason <cmd> --help`.

    .venv/bin/python scripts/bench_cli.py [--runs 5] [--commands train,export]

Prints one JSON object; nothing is asserted. Each figure is the median wall time, in seconds, of
--runs cold subprocesses (a fresh interpreter each time, so nothing is cached in memory but what
the OS keeps), plus the slowest run and whether the command exited 0. What a user waits for before
seeing help is almost entirely module imports, so this is where a torch/transformers import at
module level shows up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def time_command(args: list[str], runs: int) -> dict:
    times, codes = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "emoreason.cli", *args], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        codes.add(proc.returncode)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "ok": codes == {0}}


def main(argv: list[str] | None = None) -> int:
    from emoreason.cli import SUBCOMMANDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold runs per command; the median is reported")
    parser.add_argument("--commands", default=None, help="comma-separated subcommands (default: all)")
    args = parser.parse_args(argv)
    names = args.commands.split(",") if args.commands else list(SUBCOMMANDS)
    results = {"emoreason --help": time_command(["--help"], args.runs)}
    for name in names:
        results[f"emoreason {name} --help"] = time_command([name, "--help"], args.runs)
    slowest = max(results, key=lambda k: results[k]["median_s"])
    print(json.dumps({"runs": args.runs, "python": sys.version.split()[0], "slowest": slowest, "commands": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
