"""``distilner serve``: the HTTP API on the tiny random model, served by uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest
import spacy
import uvicorn
from fastapi import FastAPI
from spacy.language import Language
from typer.testing import CliRunner

from spacy_distilner import __version__
from spacy_distilner.cli import app as cli_app
from spacy_distilner.entity_record import DocRecord, EntityRecord, TokenRecord, doc_to_json, record_fields
from spacy_distilner.serve import Limits, create_app
from tiny import IOB2

pytestmark = pytest.mark.usefixtures("decision")  # every test under the fp32 and the bf16 decision

LIMITS = Limits(max_batch=8, max_wait_ms=50, max_queue=64, max_chars=200, max_texts=5)
TEXT = "John Smith went to New York with Apple."


def _text(i: int) -> str:
    """A distinct text per request, so that a mixed-up answer shows."""
    return f"{('Mary', 'John Smith', 'Google')[i % 3]} said {i} people live in {('Paris', 'London')[i % 2]} ."


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
def server(iob_dir: Path, decision: str) -> Iterator[tuple[str, FastAPI]]:
    """The API on its own pipeline (under each precision decision), run by uvicorn in a background thread: its base URL and app."""
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    app = create_app(nlp, LIMITS)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port, held from the start: no race with other processes
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_until(lambda: uv.started or not thread.is_alive())
    assert uv.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    uv.should_exit = True
    thread.join(10)
    sock.close()
    assert not thread.is_alive()


@pytest.fixture()
def client(server: tuple[str, FastAPI]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def _expected(nlp: Language, text: str, token_scores: bool = False) -> dict[str, Any]:
    return doc_to_json(nlp(text), IOB2 if token_scores else None)


def test_one_text(client: httpx.Client, nlp: Language) -> None:
    response = client.post("/ner", json={"text": TEXT})
    assert response.status_code == 200
    [record] = response.json()["results"]
    assert record == _expected(nlp, TEXT) and record["entities"] and "tokens" not in record


def test_texts_with_threshold_and_token_scores(client: httpx.Client, nlp: Language) -> None:
    texts = [TEXT, _text(1), ""]
    body = {"texts": texts, "threshold": 0.5, "token_scores": True}
    results = client.post("/ner", json=body).json()["results"]
    expected = [_expected(nlp, t, token_scores=True) for t in texts]
    assert any(e["confidence"] < 0.5 for r in expected for e in r["entities"])  # the threshold drops some
    for r in expected:
        r["entities"] = [e for e in r["entities"] if e["confidence"] >= 0.5]
    assert results == expected
    assert all(tuple(t["probs"]) == IOB2 for t in results[0]["tokens"])
    assert client.post("/ner", json={"texts": []}).json() == {"results": []}


async def _post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST all the bodies at once."""
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(*(client.post("/ner", json=body) for body in bodies))


def test_concurrent_requests_are_micro_batched(server: tuple[str, FastAPI], nlp: Language) -> None:
    url, app = server
    texts = [_text(i) for i in range(20)]
    calls = app.state.batcher.pipe_calls
    responses = asyncio.run(_post_all(url, [{"text": t} for t in texts]))
    calls = app.state.batcher.pipe_calls - calls
    assert [r.status_code for r in responses] == [200] * 20
    assert [r.json()["results"] for r in responses] == [[_expected(nlp, t)] for t in texts]
    assert 20 / LIMITS.max_batch <= calls < 20  # batched, and no batch over max_batch texts


def test_size_limits_are_413(client: httpx.Client) -> None:
    response = client.post("/ner", json={"texts": ["short", "x" * 201]})
    assert response.status_code == 413
    assert response.json() == {"detail": "Text 1 has 201 characters; the limit is 200."}
    response = client.post("/ner", json={"texts": ["a"] * 6})
    assert response.status_code == 413
    assert response.json() == {"detail": "6 texts in one request; the limit is 5."}
    assert client.post("/ner", json={"text": "x" * 200}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "a", "texts": ["b"]},
        {"text": 5},
        {"texts": "not a list"},
        {"text": "a", "threshold": 2},
        b'{"text": "lone \\ud800 surrogate"}',
        b"not json",
    ],
)
def test_invalid_body_is_422(client: httpx.Client, body: dict[str, Any] | bytes) -> None:
    if isinstance(body, bytes):
        response = client.post("/ner", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/ner", json=body)
    assert response.status_code == 422 and response.json()["detail"]


def test_health_info_and_docs(client: httpx.Client, iob_dir: Path, decision: str) -> None:
    assert client.get("/health").json() == {"status": "ok", "queued": 0}
    info = client.get("/info").json()
    assert info["model"] == str(iob_dir) and info["pipeline"] is None
    assert info["labels"] == ["PER", "ORG", "LOC", "MISC"] and info["tag_labels"] == list(IOB2)
    assert (info["backend"], info["precision"], info["version"]) == ("torch", decision, __version__)
    assert info["limits"]["max_chars"] == 200
    schema = client.get("/openapi.json").json()
    assert {"/ner", "/health", "/info"} <= set(schema["paths"])
    assert {"NERRequest", "NERResponse"} <= set(schema["components"]["schemas"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_response_schema_is_the_record(client: httpx.Client) -> None:
    """The answers' OpenAPI schema is ``entity_record``'s: the same records, fields and order as ``annotate``."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["NERResponse"]["properties"]["results"]["items"] == {"$ref": "#/components/schemas/DocRecord"}
    for record in (DocRecord, EntityRecord, TokenRecord):
        assert list(schemas[record.__name__]["properties"]) == list(record_fields(record))


def test_full_queue_is_503(nlp: Language) -> None:
    """One request in nlp.pipe, one waiting (max_queue=1): the next is refused."""
    release = threading.Event()

    class Stalled:
        def pipe(self, texts: list[str], **kwargs: Any) -> Iterator[Any]:
            release.wait(10)
            return nlp.pipe(texts, **kwargs)

    app = create_app(nlp, Limits(max_batch=1, max_wait_ms=0, max_queue=1))

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            batcher = app.state.batcher
            batcher.nlp = Stalled()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                running = asyncio.create_task(client.post("/ner", json={"text": "John went."}))
                await _until(lambda: batcher.pipe_calls == 1)
                waiting = asyncio.create_task(client.post("/ner", json={"text": "Mary stayed."}))
                await _until(lambda: batcher.queued == 1)
                busy = await client.post("/ner", json={"text": "Too many."})
                release.set()
                return [busy, await running, await waiting]

    busy, running, waiting = asyncio.run(scenario())
    assert busy.status_code == 503 and "busy" in busy.json()["detail"] and busy.headers["retry-after"] == "1"
    assert running.status_code == waiting.status_code == 200
    assert waiting.json()["results"][0]["text"] == "Mary stayed."


def test_cli_serve(iob_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``distilner serve`` builds the app from its options and hands it to uvicorn."""
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    args = ["serve", "--model", str(iob_dir), "--port", "8123", "--max-texts", "3", "--max-wait-ms", "1"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)

    async def info() -> dict[str, Any]:  # /info needs no lifespan
        transport = httpx.ASGITransport(app=served["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/info")).json()

    info_json = asyncio.run(info())
    limits = info_json["limits"]
    assert (limits["max_texts"], limits["max_wait_ms"], limits["max_batch"]) == (3, 1.0, 32)
    assert info_json["token_scores"] is True  # the CLI stores token scores, for requests that ask for them


def _asgi(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def run() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await scenario(client)

    return asyncio.run(run())


def test_request_body_over_the_byte_limit_is_413(nlp: Language) -> None:
    app = create_app(nlp, Limits(max_body_bytes=1000))

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "John", "pad": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        big = await client.post("/ner", json={"text": "John went.", "unknown": "x" * 2000})
        chunked = await client.post("/ner", content=chunks(), headers={"content-type": "application/json"})
        small = await client.post("/ner", json={"text": "John went.", "unknown": "x"})
        return [big, chunked, small]

    big, chunked, small = _asgi(app, scenario)
    assert big.status_code == 413 and "1000 bytes" in big.json()["detail"]
    assert chunked.status_code == 413
    assert small.status_code == 200


def test_one_failing_request_does_not_fail_the_requests_batched_with_it(nlp: Language) -> None:
    class Fragile:
        max_length = nlp.max_length

        def pipe(self, texts: list[str], **kwargs: Any) -> Iterator[Any]:
            if any("boom" in t for t in texts):
                raise RuntimeError("this text breaks the model")
            return nlp.pipe(texts, **kwargs)

    app = create_app(nlp, Limits(max_batch=8, max_wait_ms=200))

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        app.state.batcher.nlp = Fragile()
        bodies = [{"text": "John went to Paris."}, {"text": "boom"}, {"texts": ["Mary is in London.", "ok"]}]
        responses = await asyncio.gather(*(client.post("/ner", json=b) for b in bodies))
        assert app.state.batcher.pipe_calls >= 2  # batched together first, then retried per request
        return list(responses)

    good, bad, also_good = _asgi(app, scenario)
    assert bad.status_code == 500
    assert good.status_code == also_good.status_code == 200
    assert [r["text"] for r in also_good.json()["results"]] == ["Mary is in London.", "ok"]


def test_text_over_nlp_max_length_is_413(iob_dir: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distilner", config={"model": str(iob_dir)})
    nlp.max_length = 50
    app = create_app(nlp, Limits(max_chars=1000))

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.post("/ner", json={"texts": ["short", "x" * 60]}), await client.post("/ner", json={"text": "x" * 50})]

    over, fine = _asgi(app, scenario)
    assert over.status_code == 413 and "limit is 50" in over.json()["detail"]
    assert fine.status_code == 200
