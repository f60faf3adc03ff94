"""The ``openai`` backend against real HTTP servers on 127.0.0.1: small stdlib stubs (retry/backoff,
auth, errors, concurrency, payload shape) and ``mlx_vlm.server`` serving a tiny random Gemma3."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import answer_position_text, probs_from_top_logprobs_path, surface_forms
from emoalign.raters.vlm.backend import Ask
from emoalign.raters.vlm.openai_backend import OpenAIBackend

LABELS = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
DIGITS = tuple(str(i) for i in range(1, 10))
SECRET = "sk-test-DO-NOT-LEAK-1234567890"


def _image(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _lp(p):
    return math.log(p)


# A canned completion: greedy JSON answer "Anger" with top_logprobs at the answer token.
CANNED_TOP = [("Anger", _lp(0.5)), (" Fear", _lp(0.2)), ("S", _lp(0.1)), ("Sad", _lp(0.05)), ("ang", _lp(0.05)),
              ("xyz", _lp(0.1))]


def _completion(text="{\"emotion\": \"Anger\"}", with_logprobs=True):
    toks = ["{\"", "emotion", "\":", " \"", "Anger", "\"}"]
    content = []
    for t in toks:
        top = CANNED_TOP if t == "Anger" else [(t, _lp(0.9)), ("zz", _lp(0.1))]
        content.append({"token": t, "logprob": top[0][1],
                        "top_logprobs": [{"token": a, "logprob": b} for a, b in top]})
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
    if with_logprobs:
        choice["logprobs"] = {"content": content}
    return {"id": "x", "object": "chat.completion", "model": "stub-model@rev1", "choices": [choice]}


class Stub:
    """A tiny chat-completions server; ``plan`` is a list of (status, body) served in order, the last repeated."""

    def __init__(self, plan, delay=0.0, reject_logprobs=False, models=None):
        self.plan = list(plan)
        self.models = models            # the GET /models body, or None (404)
        self.delay = delay
        self.reject_logprobs = reject_logprobs
        self.requests = []          # (headers, body) per request
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                ok = self.path.endswith("/models") and stub.models is not None
                data = json.dumps(stub.models if ok else {"error": "not found"}).encode()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                with stub.lock:
                    stub.requests.append((dict(self.headers), body))
                    k = len(stub.requests) - 1
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    if stub.delay:
                        time.sleep(stub.delay)
                    if stub.reject_logprobs and body.get("logprobs"):
                        status, out = 400, {"error": {"message": "logprobs is not supported by this model"}}
                    else:
                        status, out = stub.plan[min(k, len(stub.plan) - 1)]
                    if callable(out):
                        out = out(self.headers, body)
                    data = json.dumps(out).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _backend(url, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 10)
    return OpenAIBackend("stub-model", url, **kw)


# --- answer-position rule and the sequence rule on top_logprobs ----------------------------------------

@pytest.mark.parametrize("tokens,cands,span,expected", [
    (["Ang", "er"], LABELS, None, 0),
    (["{\"", "emotion", "\":", " \"", "Sad", "ness", "\"}"], LABELS, None, 4),
    (["<think>", "I", " see", " 3", " faces", "</think>", " 7"], DIGITS, None, 6),
    (["Valence", ":", " ", "8", "/", "9"], DIGITS, None, 2),      # " 8" starts at the space token
    (["Valence", ":", " ", "8", "/", "9"], DIGITS, (9, 10), 3),   # the parser's span wins
    (["doubt"], LABELS, None, None),
])
def test_answer_position(tokens, cands, span, expected):
    assert answer_position_text(tokens, cands, span) == expected


def test_surface_forms():
    assert surface_forms("happy") == (" Happy", " happy", "Happy", "happy")
    assert surface_forms("-4") == (" -4", "-4")
    assert surface_forms("10") == (" 10", "10")


def test_prefixes_only_count_when_the_generated_path_continues_them():
    """ " a" / "S" start several candidates or none completely: they count only where the generated tokens show
    how the candidate continues."""
    labels = ("happy", "sad", "angry")
    # the model wrote " an" then "gry": " an" is on the path, so " angry" = p(" an") * p("gry" | " an")
    probs, mass = probs_from_top_logprobs_path(
        [[(" an", _lp(0.5)), (" a", _lp(0.3)), (" happy", _lp(0.2))], [("gry", _lp(0.8)), ("xiety", _lp(0.2))]],
        [" an", "gry"], labels)
    assert mass == pytest.approx(0.5 * 0.8 + 0.2)                      # " a" (not generated) counts nothing
    assert probs["angry"] == pytest.approx(0.4 / 0.6) and probs["happy"] == pytest.approx(0.2 / 0.6)


def test_ten_is_not_one_on_a_one_to_ten_scale():
    """A server that writes 10 as "1", "0": "1" counts only with the next token not continuing it into "10"."""
    cands = tuple(str(k) for k in range(1, 11))
    probs, mass = probs_from_top_logprobs_path(
        [[("1", _lp(0.6)), ("7", _lp(0.4))], [("0", _lp(0.75)), ("<eot>", _lp(0.25))]], ["1", "0"], cands)
    assert probs["10"] == pytest.approx(0.45) and probs["1"] == pytest.approx(0.15) and probs["7"] == pytest.approx(0.4)
    assert mass == pytest.approx(1.0)


def test_negative_scale_candidates_stay_distinct():
    cands = tuple(str(i) for i in range(-2, 3))             # -2 .. 2
    probs, mass = probs_from_top_logprobs_path([[("-1", _lp(0.6)), ("1", _lp(0.3)), ("-", _lp(0.1))]], ["-1"], cands)
    assert probs["-1"] == pytest.approx(2 / 3) and probs["1"] == pytest.approx(1 / 3) and mass == pytest.approx(0.9)


def test_probs_from_top_logprobs_values():
    probs, mass = probs_from_top_logprobs_path([CANNED_TOP], ["Anger"], LABELS)
    # Anger 0.5; " Fear" 0.2; "S", "Sad", "ang" only start candidates off the generated path; "xyz" names none.
    assert mass == pytest.approx(0.7, abs=1e-12)
    assert probs["Anger"] == pytest.approx(0.5 / 0.7, abs=1e-12)
    assert probs["Fear"] == pytest.approx(0.2 / 0.7, abs=1e-12)
    assert probs["Sadness"] == 0.0
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert probs_from_top_logprobs_path([[("xyz", 0.0)]], ["xyz"], LABELS) == (None, 0.0)


# --- stub servers -----------------------------------------------------------------------------------

def test_retries_429_then_200_and_payload_shape():
    img = _image(1)
    with Stub([(429, {"error": {"message": "rate limited"}}), (429, {"error": "slow down"}),
               (200, _completion())]) as s:
        be = _backend(s.url, max_retries=3, concurrency=1)
        [ans] = be.ask([Ask("img1", img, "Which emotion?", candidates=LABELS, max_new_tokens=12)])
        be.close()
        assert len(s.requests) == 3 and be.requests_sent == 3
        _, body = s.requests[-1]
    assert ans.text == "{\"emotion\": \"Anger\"}"
    assert ans.info["answer_position"] == 4
    assert ans.probs["Anger"] == pytest.approx(0.5 / 0.7, abs=1e-12)
    assert sum(ans.probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert ans.candidate_mass == pytest.approx(0.7, abs=1e-12)
    # image first (PNG data URL of the same pixels), then text; greedy; logprobs requested
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"]
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    back = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert np.array_equal(np.asarray(back), np.asarray(img))
    assert parts[1]["text"] == "Which emotion?"
    assert body["temperature"] == 0 and body["max_tokens"] == 12
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert ans.info["served_model"] == "stub-model@rev1" and ans.info["logprobs_used"] is True
    assert be.server_entry is None and be.provenance()["model_revision"] is None     # no GET /models here


def test_persistent_5xx_gives_up_after_bounded_attempts():
    with Stub([(503, {"error": "overloaded"})]) as s:
        be = _backend(s.url, max_retries=2, concurrency=1)
        t0 = time.perf_counter()
        with pytest.raises(EmoalignError, match="after 3 attempts.*503"):
            be.ask([Ask("a", _image(), "q", candidates=LABELS)])
        assert time.perf_counter() - t0 < 5
        assert len(s.requests) == 3
        be.close()


def test_4xx_is_a_clear_error_without_retry():
    with Stub([(404, {"error": {"message": "model 'stub-model' not found"}})]) as s:
        be = _backend(s.url, max_retries=5)
        with pytest.raises(EmoalignError, match=r"HTTP 404: model 'stub-model' not found(.|\n)*base_url"):
            be.ask([Ask("a", _image(), "q")])
        assert len(s.requests) == 1
        be.close()


def test_connection_refused_is_retried_then_reported():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()                       # nothing listens there now
    be = _backend(f"http://127.0.0.1:{port}/v1", max_retries=2, timeout=2)
    with pytest.raises(EmoalignError, match="after 3 attempts.*Connect"):
        be.ask([Ask("a", _image(), "q")])
    assert be.requests_sent == 3
    be.close()


def test_api_key_in_header_only(monkeypatch):
    monkeypatch.setenv("EMOALIGN_TEST_KEY", SECRET)

    def echo_key(headers, body):       # a careless server that echoes the key back in its error
        return {"error": {"message": f"invalid key {headers.get('Authorization')}"}}

    with Stub([(200, _completion()), (401, echo_key)]) as s:
        be = _backend(s.url, api_key_env="EMOALIGN_TEST_KEY", concurrency=1)
        be.ask([Ask("a", _image(), "q", candidates=LABELS)])
        assert s.requests[0][0]["Authorization"] == f"Bearer {SECRET}"
        with pytest.raises(EmoalignError) as err:
            be.ask([Ask("a", _image(), "q", candidates=LABELS)])
        be.close()
    shown = str(err.value) + repr(err.value)
    assert "HTTP 401" in shown and "EMOALIGN_TEST_KEY" in shown and "***" in shown
    for text in (shown, repr(be), json.dumps(be.provenance()), repr(vars(be))):
        assert SECRET not in text


def test_no_key_no_authorization_header(monkeypatch):
    monkeypatch.delenv("EMOALIGN_TEST_KEY", raising=False)
    with Stub([(200, _completion())]) as s:
        be = _backend(s.url, api_key_env="EMOALIGN_TEST_KEY")
        be.ask([Ask("a", _image(), "q")])
        be.close()
        assert "Authorization" not in s.requests[0][0]


def test_server_without_logprobs_falls_back():
    with Stub([(200, _completion(with_logprobs=False))], reject_logprobs=True) as s:
        be = _backend(s.url, concurrency=2)
        answers = be.ask([Ask(f"i{k}", _image(k), "q", candidates=LABELS) for k in range(3)])
        be.close()
        assert [a.text for a in answers] == ["{\"emotion\": \"Anger\"}"] * 3
        assert all(a.probs is None for a in answers)
        # one probe with logprobs, refused; every later request goes without
        assert [bool(b.get("logprobs")) for _, b in s.requests] == [True, False, False, False]
        assert all(a.info["logprobs_used"] is False for a in answers)


def test_concurrency_limit_and_order():
    def by_prompt(headers, body):
        out = _completion()
        out["choices"][0]["message"]["content"] = body["messages"][0]["content"][1]["text"].upper()
        return out

    with Stub([(200, by_prompt)], delay=0.15) as s:
        be = _backend(s.url, concurrency=3, logprobs=True)
        t0 = time.perf_counter()
        answers = be.ask([Ask(f"i{k}", _image(k, 8), f"prompt {k}") for k in range(9)])
        elapsed = time.perf_counter() - t0
        be.close()
    assert [a.text for a in answers] == [f"PROMPT {k}" for k in range(9)]
    assert s.max_in_flight == 3
    assert elapsed < 9 * 0.15 * 0.8          # ran in parallel


def test_bad_options_are_user_errors():
    with pytest.raises(EmoalignError, match="base_url"):
        OpenAIBackend("m", "localhost:8000")
    with pytest.raises(EmoalignError, match="unknown option"):
        OpenAIBackend("m", "http://127.0.0.1:1/v1", temprature=0)


# --- a real server: mlx_vlm.server serving a tiny random-weight Gemma3 --------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlx_server(tiny_gemma3_dir, tmp_path_factory):
    pytest.importorskip("mlx_vlm")
    import httpx
    from tiny_vlm_mlx import to_mlx        # tests/fixtures is on sys.path (conftest)

    model_dir = to_mlx(tiny_gemma3_dir, tmp_path_factory.mktemp("served") / "gemma3")
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOP_LOGPROBS_K="20")
    log = open(tmp_path_factory.mktemp("log") / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "mlx_vlm.server", "--model", str(model_dir),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"mlx_vlm.server exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                pytest.fail("mlx_vlm.server did not start in 120 s")
            time.sleep(0.5)
        yield model_dir, f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_real_mlx_vlm_server(mlx_server, tiny_gemma3_dir):
    """Two images, twice, two at a time, through ``python -m mlx_vlm.server`` on loopback."""
    model_dir, url = mlx_server
    be = OpenAIBackend(str(model_dir), url, api_key_env="EMOALIGN_UNSET_KEY", concurrency=2, timeout=60,
                       max_retries=1, top_logprobs=20)
    labels = ("happy", "sad", "angry", "fear", "disgust", "neutral")
    q = "What is the facial expression in this image? Choose one from: happy, sad, angry, fear, disgust, neutral."
    asks = [Ask(f"i{k}", _image(k, 64), q, candidates=labels, max_new_tokens=3) for k in range(2)]
    answers = be.ask(asks)
    again = be.ask(asks)
    be.close()
    assert be.requests_sent == 4                       # no retries were needed
    assert all(a.info["logprobs_used"] for a in answers + again)
    assert be.server_entry["id"] == str(model_dir)    # what the server lists
    for a, b in zip(answers, again):
        assert a.text and a.text == b.text             # temperature 0: deterministic
        assert a.info["usage"]["completion_tokens"] == len(a.info["logprobs"]) <= 3
        assert a.info["top_logprobs_returned"] == 20
        if a.probs is not None:
            assert set(a.probs) == set(labels)
            assert sum(a.probs.values()) == pytest.approx(1.0, abs=1e-9)
            assert 0 < a.candidate_mass <= 1 + 1e-9
            assert a.probs == pytest.approx(b.probs, abs=1e-6)
    # what reaches the model: the messages are templated by the server; mlx_vlm.server 0.7.10 adds a second BOS
    # to the templated prompt (one token more than the hf and mlx backends send for the same turn)
    from emoalign.raters.vlm.hf_backend import HFBackend

    hf = HFBackend(str(tiny_gemma3_dir))
    for a, ask in zip(answers, asks):
        assert a.info["usage"]["prompt_tokens"] == len(hf.prompt_ids(ask)) + 1
    # greedy: the chosen token is the most probable one at every position
    import httpx

    body = be._payload(asks[0], True)
    r = httpx.post(f"{url}/chat/completions", json=body, timeout=60).json()
    for pos in r["choices"][0]["logprobs"]["content"]:
        assert pos["logprob"] == pytest.approx(max(t["logprob"] for t in pos["top_logprobs"]), abs=1e-6)


def _chat(text, tokens):
    """A completion whose logprobs hold ``tokens``: a list of (chosen, [(alt, p), ...])."""
    content = [{"token": tok, "logprob": math.log(alts[0][1]),
                "top_logprobs": [{"token": a, "logprob": math.log(p)} for a, p in alts]} for tok, alts in tokens]
    return {"model": "stub", "choices": [{"index": 0, "finish_reason": "stop", "logprobs": {"content": content},
                                          "message": {"role": "assistant", "content": text}}]}


def test_infer_cli_with_openai_backend(tmp_path, monkeypatch):
    """`emoalign infer --rater openai:NAME --base-url URL` end to end against a loopback server that answers
    the paper's three steps: carried context reaches the server, probabilities land in the table."""
    import pandas as pd
    from click.testing import CliRunner

    from emoalign.cli.infer import infer

    def answer(headers, body):
        text = body["messages"][0]["content"][1]["text"]
        if "How intense" in text:
            return _chat("3", [("3", [("3", 0.5), ("4", 0.25), ("10", 0.25)])])
        if "How pleasant" in text:
            return _chat("Valence: 8", [("Val", [("Val", 0.9)]), ("ence", [("ence", 0.9)]), (":", [(":", 0.9)]),
                                        (" 8", [(" 8", 0.6), (" 7", 0.2), (" 9", 0.2)])])
        return _chat("Sad.", [("Sad", [("Sad", 0.7), ("Happy", 0.2), ("S", 0.1)]), (".", [(".", 1.0)])])

    (tmp_path / "img").mkdir()
    for i in range(2):
        _image(i, 16).save(tmp_path / "img" / f"{i}.png")
    pd.DataFrame([dict(image_id=f"im{i}", path=f"img/{i}.png") for i in range(2)]).to_parquet(tmp_path / "s.parquet")
    monkeypatch.setenv("EMOALIGN_CLI_KEY", SECRET)
    with Stub([(200, answer)]) as s:
        res = CliRunner().invoke(infer, ["--rater", "openai:stub-vlm", "--base-url", s.url, "--api-key-env",
                                         "EMOALIGN_CLI_KEY", "--name", "served", "--stimuli", str(tmp_path / "s.parquet"),
                                         "--out", str(tmp_path / "runs"), "--batch-size", "2", "--no-progress"],
                                 catch_exceptions=False)
        bodies = [b for _, b in s.requests]
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "runs" / "served" / "ratings.parquet").set_index("image_id")
    assert len(bodies) == 6 and all(b["model"] == "stub-vlm" for b in bodies)
    texts = [b["messages"][0]["content"][1]["text"] for b in bodies]
    assert sum("You identified this face as sad." in t for t in texts) == 2          # step 1 carried into step 2
    assert sum("with pleasantness 8 out of 9" in t for t in texts) == 2               # ... and 1, 2 into step 3
    assert (df["emotion"] == "sad").all() and (df["valence"] == 8).all() and (df["arousal"] == 3).all()
    assert (df["backend"] == "openai").all()
    # "S" (0.1) only starts "sad" and was not generated: it counts nothing, so sad .7 / .9, happy .2 / .9;
    # valence 8/7/9 = .6/.2/.2; arousal 3/4 = .5/.25 ("10" is no candidate on 1-9)
    assert df["p_emotion_sad"].iloc[0] == pytest.approx(0.7 / 0.9, abs=1e-12)
    assert df["p_emotion_happy"].iloc[0] == pytest.approx(0.2 / 0.9, abs=1e-12)
    assert (df["served_model"] == "stub").all() and df["logprobs_used"].all()
    assert df["valence_expected"].iloc[0] == pytest.approx(8.0, abs=1e-12)
    assert df["arousal_expected"].iloc[0] == pytest.approx((3 * 0.5 + 4 * 0.25) / 0.75, abs=1e-12)
    for f in (tmp_path / "runs").rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f                           # the key is never written


def test_image_placement_and_server_reported_model():
    """``image_placement=after`` sends the text before the image; the server's GET /models entry (root, revision
    of a hub snapshot) is recorded in provenance."""
    snap = "/srv/hub/models--google--gemma-3-4b-it/snapshots/" + "ab" * 20
    models = {"object": "list", "data": [{"id": "other", "root": "/x"},
                                        {"id": "stub-model", "root": snap, "owned_by": "vllm"}]}
    with Stub([(200, _completion())], models=models) as s:
        be = _backend(s.url, image_placement="after")
        be.ask([Ask("a", _image(), "q", candidates=LABELS)])
        be.close()
        parts = s.requests[0][1]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    prov = be.provenance()
    assert prov["image_placement"] == "after" and prov["model_revision"] == "ab" * 20
    assert prov["server_model"] == {"id": "stub-model", "root": snap, "owned_by": "vllm"}
    with pytest.raises(EmoalignError, match="image placement"):
        OpenAIBackend("m", "http://127.0.0.1:1/v1", image_placement="middle")


def test_image_encoded_once_per_image_and_userinfo_hidden(monkeypatch):
    import emoalign.raters.vlm.openai_backend as ob

    calls = []
    real = ob.image_data_url
    monkeypatch.setattr(ob, "image_data_url", lambda im: calls.append(1) or real(im))
    with Stub([(200, _completion())]) as s:
        url = s.url.replace("http://", "http://user:pa55word@")
        be = _backend(url, concurrency=1)
        a, b = _image(1), _image(2)
        be.ask([Ask("k", a, "step 1")])
        be.ask([Ask("k", a, "step 2")])
        assert len(calls) == 1                                   # same image: encoded once
        be.ask([Ask("k", b, "other pixels, same key")])
        assert len(calls) == 2
        be.release("k")
        be.ask([Ask("k", b, "after release")])
        assert len(calls) == 3
        urls = [bb["messages"][0]["content"][0]["image_url"]["url"] for _, bb in s.requests]
        assert urls[0] == urls[1] != urls[2]
        be.close()
    for text in (repr(be), json.dumps(be.provenance())):
        assert "pa55word" not in text and "127.0.0.1" in text
