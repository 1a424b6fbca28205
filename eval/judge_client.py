"""An LLM judge behind any OpenAI-compatible endpoint (the project's own server included).

Temperature 0, versioned prompts (emoreason.eval.judge_prompts), robust score parsing
(emoreason.eval.judge_scores), bounded concurrency, retries with exponential backoff and jitter on
timeouts, connection errors, 408/409/429 and 5xx (never on other 4xx: the request itself is wrong),
and a persistent cache (emoreason.eval.judge_cache): a re-run over the same inputs makes no calls.
A reply with no parsable score is asked once more, then recorded as unscored, not cached.

Faults are per item: a garbled reply (no score, no text, a body that is not a completion), a
request that keeps failing or timing out leaves that item unscored with its reason; the other items
are scored, and the counts of each kind are reported (`summarise`). `ask` is the same machinery for
replies that are text to parse rather than a score (label extraction, sentiment, synonym groups).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import openai
from tqdm import tqdm

from emoreason.eval.judge_cache import JudgeCache, cache_key
from emoreason.eval.judge_prompts import DEFAULT_PROMPTS, PromptSet, load_prompts
from emoreason.eval.judge_scores import parse_score
from emoreason.progress import show_progress

__all__ = ["JudgeReply", "JudgeScore", "JudgeStats", "LLMJudge", "parse_score", "summarise"]

RETRIED_STATUS = {408, 409, 429}
UNPARSABLE = "unparsable reply"
FAILED = "failed"
# A server asking for a longer pause (Retry-After) is obeyed up to this many seconds.
MAX_RETRY_AFTER_S = 60.0


@dataclasses.dataclass
class JudgeScore:
    score: float | None
    reply: str | None
    """The judge's raw reply (the last one when it was asked twice); None when no call succeeded."""
    cached: bool = False
    error: str | None = None

    @property
    def fault(self) -> str | None:
        """None when scored, else "unparsable" or "failed"."""
        if self.error is None:
            return None
        return "unparsable" if self.error == UNPARSABLE else FAILED


@dataclasses.dataclass
class JudgeReply:
    """A parsed text reply: `value` is what the parser made of it, None when it could not."""

    value: object
    reply: str | None
    cached: bool = False
    error: str | None = None


@dataclasses.dataclass
class JudgeStats:
    calls: int = 0
    """HTTP requests sent, retries and second asks included."""
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    """Items left unscored because the endpoint kept failing (or refused the request)."""
    unparsable: int = 0
    """Items left unscored because both replies had no usable score."""

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class LLMJudge:
    def __init__(
        self,
        base_url: str,
        model: str,
        cache_path: str | Path,
        api_key: str | None = None,
        prompts: str | Path | PromptSet = DEFAULT_PROMPTS,
        concurrency: int = 8,
        max_retries: int = 4,
        timeout: float = 30.0,
        backoff_base: float = 0.5,
        max_tokens: int = 256,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency: expected an integer >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries: expected an integer >= 0, got {max_retries}")
        if timeout <= 0:
            raise ValueError(f"timeout: expected seconds > 0, got {timeout}")
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.prompts = prompts if isinstance(prompts, PromptSet) else load_prompts(prompts)
        self.cache = JudgeCache(cache_path)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.max_tokens = max_tokens
        self.stats = JudgeStats()

    @property
    def prompt_version(self) -> str:
        return self.prompts.version

    def _client(self) -> openai.AsyncOpenAI:
        # Without a key of our own we still pass one: the client would otherwise send $OPENAI_API_KEY
        # to whatever judge endpoint this is.
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "none", max_retries=0, timeout=self.timeout)

    async def _ask(self, client: openai.AsyncOpenAI, messages: list[dict[str, str]]) -> str:
        """One reply's text, retrying what a retry can fix; raises the last error otherwise."""
        for attempt in range(self.max_retries + 1):
            pause = self.backoff_base * 2**attempt * (0.5 + random.random())  # jitter: retries don't arrive in lockstep
            try:
                self.stats.calls += 1
                reply = await client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0, max_tokens=self.max_tokens
                )
                # A server that answers 200 without choices gave no reply: treated as garbled, not as a crash.
                choices = getattr(reply, "choices", None)
                choice = choices[0] if isinstance(choices, list) and choices else None
                content = getattr(getattr(choice, "message", None), "content", None)
                # Anything but text (a number, a list, null) is a garbled reply, never a crash.
                return content if isinstance(content, str) else ""
            except openai.APIStatusError as exc:
                if (exc.status_code < 500 and exc.status_code not in RETRIED_STATUS) or attempt == self.max_retries:
                    raise
                pause = max(pause, _retry_after(exc))
            except (openai.APITimeoutError, openai.APIConnectionError):
                if attempt == self.max_retries:
                    raise
            self.stats.retries += 1
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _score_key(self, client: openai.AsyncOpenAI, key: str, messages: list[dict[str, str]], limit: asyncio.Semaphore) -> JudgeScore:
        if (hit := self.cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return JudgeScore(hit[0], hit[1], cached=True)
        value, reply, error = await self._ask_parsed(client, messages, limit, parse_score)
        if error is None:
            self.cache.put(key, value, reply)
        return JudgeScore(value, reply, error=error)

    async def _reply_key(self, client, key: str, messages, limit: asyncio.Semaphore, parse: Callable[[str], object]) -> JudgeReply:
        if (hit := self.cache.get_reply(key)) is not None and (value := parse(hit)) is not None:
            self.stats.cache_hits += 1
            return JudgeReply(value, hit, cached=True)
        value, reply, error = await self._ask_parsed(client, messages, limit, parse)
        if error is None:
            self.cache.put_reply(key, reply)
        return JudgeReply(value, reply, error=error)

    async def _ask_parsed(self, client, messages, limit: asyncio.Semaphore, parse: Callable[[str], object]) -> tuple[object, str | None, str | None]:
        """(parsed value, raw reply, None), or (None, last reply, reason) when no reply could be parsed."""
        async with limit:
            reply = None
            try:
                for _ in range(2):  # a garbled reply gets one more chance
                    reply = await self._ask(client, messages)
                    value = parse(reply)
                    if value is not None:
                        return value, reply, None
            except Exception as exc:  # noqa: BLE001 - any fault of one item (HTTP, a body no client can read) stays that item's
                self.stats.failures += 1
                return None, reply, f"{type(exc).__name__}: {exc}"[:500]
        self.stats.unparsable += 1
        return None, reply, UNPARSABLE

    async def score_async(self, template_name: str, items: Sequence[dict[str, str]], progress: bool = False) -> list[JudgeScore]:
        """Scores in item order, at most `concurrency` requests in flight. Items with identical inputs
        are asked once. A bad item (unknown template, missing input) raises before any call is made."""
        template = self.prompts.template(template_name)
        keyed = []
        for item in items:
            messages = template.messages(item)
            keyed.append((cache_key(self.model, self.prompt_version, template_name, messages), messages))
        unique = dict(keyed)
        weight = {key: 0 for key in unique}
        for key, _ in keyed:
            weight[key] += 1
        limit = asyncio.Semaphore(self.concurrency)
        client = self._client()
        tasks = {key: asyncio.ensure_future(self._score_key(client, key, messages, limit)) for key, messages in unique.items()}
        try:
            with tqdm(total=len(keyed), desc=f"judge {template_name}", unit="item", disable=not (progress and show_progress())) as bar:
                for key, task in tasks.items():
                    task.add_done_callback(lambda _, n=weight[key]: bar.update(n))
                await asyncio.gather(*tasks.values())
            return [dataclasses.replace(tasks[key].result()) for key, _ in keyed]
        finally:
            for task in tasks.values():
                task.cancel()  # only matters when one raised: the rest must not outlive the client
            await client.close()

    async def ask_async(
        self, template_name: str, items: Sequence[dict[str, str]], parse: Callable[[str], object], progress: bool = False
    ) -> list[JudgeReply]:
        """Parsed text replies in item order, on the same retries, concurrency and cache as scores;
        `parse` returns None for a reply it cannot use (asked once more, then left unparsed)."""
        template = self.prompts.template(template_name)
        keyed = [(cache_key(self.model, self.prompt_version, template_name, m), m) for m in (template.messages(i) for i in items)]
        limit = asyncio.Semaphore(self.concurrency)
        client = self._client()
        tasks = {key: asyncio.ensure_future(self._reply_key(client, key, messages, limit, parse)) for key, messages in dict(keyed).items()}
        try:
            with tqdm(total=len(tasks), desc=f"judge {template_name}", unit="item", disable=not (progress and show_progress())) as bar:
                for task in tasks.values():
                    task.add_done_callback(lambda _: bar.update(1))
                await asyncio.gather(*tasks.values())
            return [dataclasses.replace(tasks[key].result()) for key, _ in keyed]
        finally:
            for task in tasks.values():
                task.cancel()
            await client.close()

    def ask(self, template_name: str, items: Sequence[dict[str, str]], parse: Callable[[str], object], progress: bool = False) -> list[JudgeReply]:
        _refuse_running_loop("ask")
        return asyncio.run(self.ask_async(template_name, items, parse, progress))

    async def score_one_async(self, template_name: str, inputs: dict[str, str]) -> JudgeScore:
        (score,) = await self.score_async(template_name, [inputs])
        return score

    def score(self, template_name: str, items: Sequence[dict[str, str]], progress: bool = False) -> list[JudgeScore]:
        """Scores in item order; for callers outside an event loop (inside one, await score_async)."""
        _refuse_running_loop("score")
        return asyncio.run(self.score_async(template_name, items, progress))

    def score_one(self, template_name: str, inputs: dict[str, str]) -> JudgeScore:
        _refuse_running_loop("score_one")
        return asyncio.run(self.score_one_async(template_name, inputs))

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _retry_after(exc: openai.APIStatusError) -> float:
    """Seconds the server asked us to wait (Retry-After in seconds), 0 when it did not say."""
    try:
        return min(float(exc.response.headers.get("retry-after", 0)), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):  # an HTTP date, or garbage: fall back to our own backoff
        return 0.0


def _refuse_running_loop(method: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"LLMJudge.{method} was called inside a running event loop; await LLMJudge.{method}_async there")


def summarise(scores: Sequence[JudgeScore]) -> dict:
    """Mean over scored items, with how many could not be scored and why (never counted as any score):
    `failed` (the endpoint kept failing, timing out or refused) and `unparsable` (garbled replies)."""
    values = [s.score for s in scores if s.score is not None]
    faults = [s.fault for s in scores if s.score is None]
    return {
        "mean": sum(values) / len(values) if values else None,
        "scored": len(values),
        "unscored": len(scores) - len(values),
        "failed": faults.count(FAILED),
        "unparsable": faults.count("unparsable"),
    }
