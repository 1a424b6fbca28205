"""A persistent judge cache: identical judge model, prompt version and messages are never asked twice.

SQLite, one row per key; every write is its own transaction, so a killed run keeps what it scored.
Only parsed scores (and text replies their parser accepted) are stored: an unparsable or failed
reply is retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


def cache_key(model: str, prompt_version: str, template: str, messages: list[dict[str, str]]) -> str:
    """sha256 of everything that decides the judge's reply (temperature is always 0)."""
    payload = json.dumps({"model": model, "prompt_version": prompt_version, "template": template, "messages": messages}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # One connection guarded by a lock: the judge writes from one event loop, other callers from
            # threads. isolation_level=None is autocommit, so each put is durable once it returns.
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)
            # WAL lets another process (a second eval over the same cache) read while this one writes.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL, reply TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"judge cache {self.path}: not a usable SQLite database ({exc}); move it away to start afresh") from None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[float, str] | None:
        """(score, raw reply) for a key scored before, else None; counted as a hit or a miss."""
        with self._lock:
            row = self._db.execute("SELECT score, reply FROM scores WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            return float(row[0]), row[1]

    def put(self, key: str, score: float, reply: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO scores (key, score, reply) VALUES (?, ?, ?)", (key, score, reply))

    def get_reply(self, key: str) -> str | None:
        """The raw text reply stored for a key, else None; counted as a hit or a miss."""
        with self._lock:
            row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            return row[0]

    def put_reply(self, key: str, reply: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies (key, reply) VALUES (?, ?)", (key, reply))

    def __len__(self) -> int:
        with self._lock:
            return sum(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("scores", "replies"))

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
