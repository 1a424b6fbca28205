"""Joining a Ray cluster (or starting one on this machine) for the scale-out engines of prep and infer.

An address that cannot be reached, a missing `ray` extra and a cluster short of the resources a job
asks for are ConfigErrors naming the key, raised before any work is scheduled; Ray's own behaviour
for an unreachable head is to retry for a minute and then print a stack trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from emoreason.config import ConfigError, check

START_HINT = ("start one with `ray start --head` on the head node and `ray start --address HEAD:6379` on the others "
              "(docs/scale_out.md), or leave the address empty to start Ray on this machine")


@dataclasses.dataclass
class RayConfig:
    """Where the Ray engine runs and how many actors it starts."""

    address: str | None = None
    """Ray cluster to join: "auto" (the cluster this node belongs to, as `ray start` left it), "HOST:PORT" of the
    head, or null: $RAY_ADDRESS when set, else a Ray instance started on this machine for the run."""
    actors_per_encoder: int = 1
    """Actors in each frozen encoder's pool; each loads the encoder once."""
    batch_size: int = 8
    """Samples handed to an encoder actor at a time."""
    gpus_per_actor: float | None = None
    """GPUs per encoder actor; null: 1 where the cluster has GPUs (the encoder then runs on its GPU), else 0."""
    cpus_per_actor: float = 0.25
    """CPUs Ray reserves per encoder actor; decoding and face detection tasks share the CPUs the actors leave."""
    pool_per_encoder: bool | None = None
    """One actor pool per encoder forward pass (true) or one pool whose actors hold every encoder (false);
    null: one per encoder where the actors get GPUs, one for all elsewhere."""

    def __post_init__(self) -> None:
        check(self.address is None or (isinstance(self.address, str) and self.address.strip() != ""), "ray.address",
              'null, "auto" or HOST:PORT', self.address)
        check(isinstance(self.actors_per_encoder, int) and self.actors_per_encoder >= 1, "ray.actors_per_encoder",
              "an integer >= 1", self.actors_per_encoder)
        check(isinstance(self.batch_size, int) and self.batch_size >= 1, "ray.batch_size", "an integer >= 1", self.batch_size)
        check(self.gpus_per_actor is None or self.gpus_per_actor >= 0, "ray.gpus_per_actor", "null or a number >= 0",
              self.gpus_per_actor)
        check(self.cpus_per_actor > 0, "ray.cpus_per_actor", "a number > 0", self.cpus_per_actor)
        check(self.pool_per_encoder in (None, True, False), "ray.pool_per_encoder", "null, true or false",
              self.pool_per_encoder)


def import_ray(key: str):
    try:
        import ray
        import ray.data  # noqa: F401  (the engines need Ray Data, not only Ray core)
    except ImportError:
        raise ConfigError(f"key '{key}': the Ray engine needs the ray extra: pip install 'emoreason[ray]'") from None
    return ray


def _check_reachable(address: str, key: str) -> None:
    """A TCP connect to HOST:PORT with a short timeout, so a wrong address fails in seconds with the key named."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"key '{key}': {address!r} is no Ray address; expected \"auto\" or HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"key '{key}': no Ray cluster answers at {address} ({exc.strerror or exc}); {START_HINT}") from None


@contextlib.contextmanager
def ray_session(address: str | None, key: str) -> Iterator[Any]:
    """The `ray` module, connected: to the session already open in this process, to `address`, or to a Ray
    instance started here (shut down on exit; a joined cluster is only disconnected from)."""
    ray = import_ray(key)
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address not in (None, "auto", "local"):
        _check_reachable(address, key)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"key '{key}': cannot join a Ray cluster at {address!r} ({detail[:300]}); {START_HINT}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_resources(ray, needs: Mapping[str, float], key: str) -> None:
    """Refuse a job the cluster can never schedule (Ray would wait for the resources forever)."""
    have = ray.cluster_resources()
    for name, amount in needs.items():
        if amount > 0 and have.get(name, 0) < amount:
            raise ConfigError(f"key '{key}': the job needs {amount:g} {name} at once but the Ray cluster has "
                              f"{have.get(name, 0):g}; lower it or add nodes with `ray start --address HEAD:6379`")
