"""Generation with transformers, one request per worker thread, streamed to the event loop.

A step loop rather than ``model.generate``: each request samples from its own seeded
``torch.Generator`` (``generate`` only reads the process-wide seed, which concurrent requests
would share), stops on the stop marker and the client's ``stop`` strings without ever streaming
a piece of them, and checks between tokens whether the client went away, so an abandoned
request frees its slot at once. The model itself is shared: inference never writes to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from kositp.export.merge import EXPORT_INFO
from kositp.models.prompt_format import STOP_MARKER
from kositp.serve.responses import Answer, Finished, collect, stream_events
from kositp.serve.schemas import ChatRequest, CompletionRequest

log = logging.getLogger("kositp")
REPLACEMENT = "\ufffd"  # what a token ending inside a multi-byte character decodes to


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int | None
    stop: tuple[str, ...]


def model_stops(model_dir: Path) -> tuple[str, ...]:
    """The export's stop strings (``kositp_export.json``), the seed's marker when there is none."""
    info = model_dir / EXPORT_INFO
    if info.is_file():
        stops = json.loads(info.read_text(encoding="utf-8")).get("stop") or []
        if isinstance(stops, list) and all(isinstance(s, str) and s for s in stops):
            return tuple(stops) or (STOP_MARKER,)
        raise ValueError(f"{info}: 'stop' must be a list of non-empty strings")
    return (STOP_MARKER,)


class StopScanner:
    """Finds stop strings in growing text and says how much of it is safe to stream."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)

    def first_stop(self, text: str, start: int) -> int | None:
        """Where the earliest stop string begins at or after ``start``, if any.

        Text before ``start`` was streamed already and never ends in the beginning of a stop
        string (:meth:`safe_end`), so no stop string can begin before it.
        """
        hits = [i for s in self.stops if (i := text.find(s, start)) >= 0]
        return min(hits) if hits else None

    def safe_end(self, text: str) -> int:
        """End of the prefix that can be streamed: no partial character, no possible stop start."""
        end = len(text.rstrip(REPLACEMENT))
        held = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, end), 0, -1):
                if text.endswith(stop[:size], 0, end):
                    held = max(held, size)
                    break
        return end - held


def sample_token(logits: Any, sampling: Sampling, generator: Any) -> int:
    """Greedy at temperature 0, else top-k / top-p (nucleus) sampling with the request's generator."""
    import torch

    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / sampling.temperature
    if sampling.top_k > 0 and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        beyond = torch.cumsum(probs, dim=-1) - probs > sampling.top_p  # the first token always stays
        logits = torch.full_like(logits, float("-inf")).scatter(0, order, ordered.masked_fill(beyond, float("-inf")))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


class HFGenerator:
    """A model folder loaded with transformers; :meth:`generate` is one request's token loop."""

    def __init__(self, model_dir: Path, device: str = "auto"):
        from kositp.models.causal_lm import load_causal_lm
        from kositp.train.common import resolve_device

        self.device = resolve_device(device)
        self.model, self.tokenizer = load_causal_lm(model_dir, self.device)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [self.tokenizer.eos_token_id])
        self.stops = model_stops(model_dir)

    def generate(self, prompt_ids: list[int], sampling: Sampling, cancelled: threading.Event) -> Iterator[str | Finished]:
        """Text pieces as they become safe to show, then :class:`Finished`; stops early when cancelled."""
        import torch

        generator = torch.Generator(device=self.model.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else secrets.randbits(63))
        scanner = StopScanner(self.stops + sampling.stop)
        step_ids = torch.tensor([prompt_ids], device=self.model.device)
        past, new_ids, emitted, text = None, [], 0, ""
        reason, sampled = "length", 0
        for _ in range(sampling.max_tokens):
            if cancelled.is_set():
                return
            with torch.inference_mode():
                out = self.model(input_ids=step_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = sample_token(out.logits[0, -1].float(), sampling, generator)
            sampled += 1
            if token in self.eos_ids:
                reason = "stop"
                break
            new_ids.append(token)
            step_ids = torch.tensor([[token]], device=self.model.device)
            text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
            hit = scanner.first_stop(text, emitted)
            if hit is not None:
                text, reason = text[:hit], "stop"
                break
            safe = scanner.safe_end(text)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        if len(text) > emitted:
            yield text[emitted:]
        yield Finished(reason, len(prompt_ids), sampled)


class HFBackend:
    """Runs :class:`HFGenerator` in a pool of ``concurrency`` threads and answers in OpenAI's shapes."""

    name = "hf"

    def __init__(self, generator: HFGenerator, concurrency: int):
        self.generator = generator
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="kositp-generate")

    async def events(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[str | Finished]:
        """The generator's output, handed from its worker thread to the event loop as it comes."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        done = object()

        def work() -> None:
            try:
                for event in self.generator.generate(prompt_ids, sampling, cancelled):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as exc:  # noqa: BLE001 (re-raised in the request, which answers 500)
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        future = loop.run_in_executor(self.pool, work)
        try:
            while (event := await queue.get()) is not done:
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            cancelled.set()
            await asyncio.shield(future)

    async def respond(
        self, request: ChatRequest | CompletionRequest, prompt_ids: list[int], max_tokens: int, answer: Answer
    ):
        sampling = Sampling(
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            seed=request.seed,
            stop=tuple(request.stop_list),
        )
        events = self.events(prompt_ids, sampling)
        if request.stream:
            return StreamingResponse(
                stream_events(answer, events, request.include_usage), media_type="text/event-stream"
            )
        text, finished = await collect(events)
        return JSONResponse(answer.whole(text, finished))

    async def ready(self) -> bool:
        return True

    def close(self) -> None:
        """Lets running generations finish (graceful shutdown), then stops the threads."""
        self.pool.shutdown(wait=True)
