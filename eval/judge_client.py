"""An LLM judge behind any OpenAI-compatible endpoint (the project's own server included).

Temperature 0, versioned prompts (emoreason.eval.judge_prompts), robust score parsing
(emoreason.eval.judge_scores), bounded concurrency, retries with exponential backoff and jitter on
timeouts, connection errors, 429 and 5xx (never on other 4xx: the request itself is wrong), and a
persistent cache (emoreason.eval.judge_cache): a re-run over the same inputs makes no calls.
A reply with no parsable score is asked once more, then recorded as unscored, not cached.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

import openai
from tqdm import tqdm

from emoreason.eval.judge_cache import JudgeCache, cache_key
from emoreason.eval.judge_prompts import DEFAULT_PROMPTS, PromptSet, load_prompts
from emoreason.eval.judge_scores import parse_score

RETRIED_STATUS = {408, 409, 429}


@dataclasses.dataclass
class JudgeScore:
    score: float | None
    reply: str | None
    cached: bool = False
    error: str | None = None


@dataclasses.dataclass
class JudgeStats:
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    unparsable: int = 0


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
        timeout: float = 60.0,
        backoff_base: float = 0.5,
        max_tokens: int = 256,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency: expected an integer >= 1, got {concurrency}")
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

    async def _ask(self, client: openai.AsyncOpenAI, messages: list[dict[str, str]]) -> str:
        """One reply's text, retrying what a retry can fix; raises the last error otherwise."""
        for attempt in range(self.max_retries + 1):
            try:
                self.stats.calls += 1
                reply = await client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0, max_tokens=self.max_tokens
                )
                return reply.choices[0].message.content or ""
            except openai.APIStatusError as exc:
                if (exc.status_code < 500 and exc.status_code not in RETRIED_STATUS) or attempt == self.max_retries:
                    raise
            except (openai.APITimeoutError, openai.APIConnectionError):
                if attempt == self.max_retries:
                    raise
            self.stats.retries += 1
            await asyncio.sleep(self.backoff_base * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _score_one(self, client, template_name: str, inputs: dict[str, str], limit: asyncio.Semaphore) -> JudgeScore:
        messages = self.prompts.template(template_name).messages(inputs)
        key = cache_key(self.model, self.prompt_version, template_name, messages)
        if (hit := self.cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return JudgeScore(hit[0], hit[1], cached=True)
        async with limit:
            reply = None
            try:
                for _ in range(2):  # a garbled reply gets one more chance
                    reply = await self._ask(client, messages)
                    score = parse_score(reply)
                    if score is not None:
                        self.cache.put(key, score, reply)
                        return JudgeScore(score, reply)
            except openai.OpenAIError as exc:
                self.stats.failures += 1
                return JudgeScore(None, reply, error=f"{type(exc).__name__}: {exc}"[:500])
        self.stats.unparsable += 1
        return JudgeScore(None, reply, error="unparsable reply")

    async def score_async(self, template_name: str, items: Sequence[dict[str, str]], progress: bool = False) -> list[JudgeScore]:
        limit = asyncio.Semaphore(self.concurrency)
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "none", max_retries=0, timeout=self.timeout)
        try:
            tasks = [asyncio.ensure_future(self._score_one(client, template_name, item, limit)) for item in items]
            with tqdm(total=len(tasks), desc=f"judge {template_name}", unit="item", disable=not progress) as bar:
                for task in asyncio.as_completed(tasks):
                    await task
                    bar.update(1)
            return [task.result() for task in tasks]
        finally:
            await client.close()

    def score(self, template_name: str, items: Sequence[dict[str, str]], progress: bool = False) -> list[JudgeScore]:
        """Scores in item order; for callers outside an event loop."""
        return asyncio.run(self.score_async(template_name, items, progress))

    def close(self) -> None:
        self.cache.close()


def summarise(scores: Sequence[JudgeScore]) -> dict:
    """Mean over scored items, with how many could not be scored (never counted as any score)."""
    values = [s.score for s in scores if s.score is not None]
    return {
        "mean": sum(values) / len(values) if values else None,
        "scored": len(values),
        "unscored": len(scores) - len(values),
    }
