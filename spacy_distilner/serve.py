"""``distilner serve``: an HTTP API (FastAPI) over a distilner pipeline, micro-batching concurrent requests.

``POST /ner`` answers each text with the record of the CLI's JSONL output (``entity_record.DocRecord``).
Requests wait in a bounded queue (full: 503); one background worker takes those that arrive
together, up to ``max_batch`` texts and waiting at most ``max_wait_ms`` for more, runs them
as one ``nlp.pipe`` call in a worker thread and hands each request its own records.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Optional, Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator, model_validator
from spacy.language import Language

from . import __version__
from .annotate import passes, run_or_retry_alone
from .component import find_component
from .entity_record import DocRecord, doc_to_json


@dataclass(frozen=True)
class Limits:
    """Batching and request limits of the server."""

    max_batch: int = 32  # texts per nlp.pipe call (a larger request still runs as one call)
    max_wait_ms: float = 5.0  # how long the worker waits for more requests to join a batch
    max_queue: int = 256  # requests waiting for the worker; more are refused with 503
    max_chars: int = 100_000  # characters per text; longer (or over nlp.max_length): 413
    max_texts: int = 128  # texts per request; more: 413
    max_body_bytes: int = 4 * 1024 * 1024  # request body; larger: 413 before it is parsed


class NERRequest(BaseModel):
    """One ``text`` or a list of ``texts`` (exactly one of them)."""

    text: Optional[str] = None
    texts: Optional[list[str]] = None
    threshold: Optional[float] = Field(None, ge=0.0, le=1.0, description="Drop entities with lower confidence.")
    token_scores: bool = Field(False, description="Add per-token tag probabilities.")

    @field_validator("text", "texts")
    @classmethod
    def _valid_unicode(cls, value: Optional[str | list[str]]) -> Optional[str | list[str]]:
        """JSON may escape lone surrogates, which no tokenizer accepts."""
        for text in [value] if isinstance(value, str) else value or []:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text holds a lone surrogate (not valid Unicode)") from None
        return value

    @model_validator(mode="after")
    def _one_input(self) -> NERRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' and 'texts'")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class NERResponse(BaseModel):
    """One record per input text, in order, as in the CLI's JSONL output (``meta`` is always null here)."""

    results: list[DocRecord]


@dataclass
class _Job:
    """One request waiting for the worker."""

    texts: list[str]
    token_scores: bool
    threshold: Optional[float]
    future: asyncio.Future[list[DocRecord]]


class MicroBatcher:
    """Collects queued requests into one ``nlp.pipe`` call at a time, run in a worker thread.

    Create and ``start`` it inside the running event loop; ``pipe_calls`` counts the ``nlp.pipe`` calls.
    """

    def __init__(self, nlp: Language, tag_labels: tuple[str, ...], limits: Limits) -> None:
        self.nlp = nlp
        self.tag_labels = tag_labels
        self.limits = limits
        self.pipe_calls = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(limits.max_queue)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="distilner")
        self._task: Optional[asyncio.Task[None]] = None

    @property
    def queued(self) -> int:
        """Requests waiting for the worker."""
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Stop the worker; a batch already running finishes in its thread."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str], token_scores: bool, threshold: Optional[float]) -> list[DocRecord]:
        """Queue the texts and wait for their records; 503 when the queue is full."""
        job = _Job(texts, token_scores, threshold, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            detail = f"Server busy: {self.limits.max_queue} requests are waiting. Retry later."
            raise HTTPException(503, detail, headers={"Retry-After": "1"}) from None
        return await job.future

    async def _work(self) -> None:
        held: Optional[_Job] = None  # a job that did not fit in the last batch
        while True:
            first = held if held is not None else await self._queue.get()
            jobs, held = await self._collect(first)
            jobs = [job for job in jobs if not job.future.done()]  # done: the client went away
            if not jobs:
                continue
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._annotate_each, jobs)
            for job, result in zip(jobs, results):
                if job.future.done():
                    continue
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    async def _collect(self, first: _Job) -> tuple[list[_Job], Optional[_Job]]:
        """``first`` and the jobs queued up to ``max_wait_ms`` after it, within ``max_batch`` texts; the next one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.max_wait_ms / 1000
        jobs, size = [first], len(first.texts)
        while size < self.limits.max_batch:
            if self._queue.empty():
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if size + len(job.texts) > self.limits.max_batch:
                return jobs, job
            jobs.append(job)
            size += len(job.texts)
        return jobs, None

    def _annotate_each(self, jobs: list[_Job]) -> list[list[DocRecord] | Exception]:
        """``_annotate`` over all jobs, retried one job at a time when it fails (``run_or_retry_alone``),
        so a failing request gets its error and the requests batched with it their records."""
        return list(run_or_retry_alone(jobs, self._annotate, lambda job, err: [err]))

    def _annotate(self, jobs: Sequence[_Job]) -> list[list[DocRecord]]:
        """One ``nlp.pipe`` call over all the jobs' texts (in the worker thread); each job's records."""
        texts = [text for job in jobs for text in job.texts]
        self.pipe_calls += 1
        docs = self.nlp.pipe(texts, batch_size=len(texts))
        results = []
        for job in jobs:
            tag_labels = self.tag_labels if job.token_scores else None
            records = [doc_to_json(doc, tag_labels) for doc in itertools.islice(docs, len(job.texts))]
            if job.threshold is not None:
                for record in records:
                    record["entities"] = [e for e in record["entities"] if passes(e["confidence"], job.threshold)]
            results.append(records)
        return results


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: a lone surrogate echoed in an error cannot break its encoding."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode("ascii")


async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 answer, safe for any input it echoes."""
    return _AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (by ``Content-Length``, or counted
    while a chunked body arrives), before anything parses it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send, length.isdigit())
            return
        received, too_large, refused = 0, False, False

        async def counted() -> dict:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: dict) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:  # the app answered the broken-off body (400): the answer is 413
                refused = True
                await self._refuse(scope, receive, send, True)

        try:
            await self.app(scope, counted, guarded)
        except _BodyTooLarge:
            if not refused:
                await self._refuse(scope, receive, send, True)

    async def _refuse(self, scope: dict, receive: Any, send: Any, too_large: bool) -> None:
        detail = f"Request body over {self.max_bytes} bytes." if too_large else "Invalid Content-Length header."
        await JSONResponse({"detail": detail}, status_code=413 if too_large else 400)(scope, receive, send)


def create_app(nlp: Language, limits: Limits = Limits(), pipeline_path: Optional[Path] = None) -> FastAPI:
    """The API over ``nlp`` (with a distilner component); ``pipeline_path`` is reported by ``/info``.

    The micro-batcher runs while the app's lifespan does; it is ``app.state.batcher`` then.
    """
    pipe = find_component(nlp)
    _ = pipe.engine  # load now: a bad model fails before the server starts

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.batcher = MicroBatcher(nlp, pipe.tag_labels, limits)
        app.state.batcher.start()
        try:
            yield
        finally:
            await app.state.batcher.stop()

    app = FastAPI(
        title="distilner",
        version=__version__,
        description="DistilBERT named entity recognition; concurrent requests are micro-batched.",
        lifespan=lifespan,
        exception_handlers={RequestValidationError: _invalid_body},
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.post("/ner", response_model=NERResponse)
    async def ner(body: NERRequest) -> dict[str, list[DocRecord]]:
        """Entities of each text (``tokens`` too with ``token_scores``); 413 over the size limits."""
        texts = body.all_texts()
        if len(texts) > limits.max_texts:
            raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {limits.max_texts}.")
        max_chars = min(limits.max_chars, nlp.max_length)
        for i, text in enumerate(texts):
            if len(text) > max_chars:
                raise HTTPException(413, f"Text {i} has {len(text)} characters; the limit is {max_chars}.")
        if body.token_scores and not pipe.settings.store_probs:
            raise HTTPException(400, "Token scores are off in this pipeline (store_probs = false).")
        if not texts:
            return {"results": []}
        return {"results": await app.state.batcher.submit(texts, body.token_scores, body.threshold)}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness, and how many requests wait for the worker."""
        return {"status": "ok", "queued": app.state.batcher.queued}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        """The model, its labels, the runtime settings and the server's limits."""
        return {
            "model": pipe.model_name,
            "pipeline": None if pipeline_path is None else str(pipeline_path),
            "labels": list(pipe.labels),
            "tag_labels": list(pipe.tag_labels),
            **pipe.backend_info,
            "threshold": pipe.settings.threshold,
            "token_scores": pipe.settings.store_probs,
            "version": __version__,
            "limits": asdict(limits),
        }

    return app
