"""The shared connector plumbing: Retry-After, the retry policy, the rate gate, paging."""

from __future__ import annotations

import random
import socket
import ssl
from datetime import UTC, datetime

import pytest

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    RateGate,
    RateLimited,
    RetriableError,
    RetryPolicy,
    TokenPaginator,
    error_for_status,
    parse_retry_after,
    with_retries,
)

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0), ("0", 0.0), ("1.5", 1.5),
    ("Mon, 01 Mar 2027 09:00:30 GMT", 30.0),     # an HTTP date, 30 s from now
    ("Mon, 01 Mar 2027 08:59:00 GMT", 0.0),      # in the past: no wait, never negative
    ("soon", None), ("", None), (None, None),
])
def test_retry_after_as_seconds_or_an_http_date(header: str | None,
                                                seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_statuses_are_classed_by_how_to_recover() -> None:
    assert error_for_status("jira", 200) is None
    limited = error_for_status("jira", 429, retry_after="7")
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert isinstance(error_for_status("jira", 401), AuthError)
    assert isinstance(error_for_status("jira", 503), RetriableError)
    fatal = error_for_status("jira", 404)
    assert isinstance(fatal, FatalSourceError) and not isinstance(fatal, RetriableError)
    assert "source 'jira'" in str(fatal)


def test_a_rate_limit_is_never_retried_sooner_than_it_says() -> None:
    waits: list[float] = []
    calls = iter([RateLimited("s", "429", retry_after=30.0), RetriableError("s", "503"), "ok"])

    def call() -> str:
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=60)
    assert with_retries(call, policy=policy, sleep=waits.append, rng=random.Random(1)) == "ok"
    assert waits[0] >= 30.0  # the floor the tracker set
    assert waits[1] < 30.0   # a plain 5xx backs off from the base delay


def test_retries_end_with_the_last_error() -> None:
    def call() -> None:
        raise RetriableError("s", "503")

    with pytest.raises(RetriableError):
        with_retries(call, policy=RetryPolicy(attempts=3), sleep=lambda _s: None)


def test_the_rate_gate_holds_every_caller_back_until_the_latest_limit() -> None:
    now = [100.0]
    waits: list[float] = []
    gate = RateGate(clock=lambda: now[0], sleep=waits.append)
    gate.wait_turn()
    assert waits == []
    gate.hold_back(10)
    gate.hold_back(4)  # a shorter limit never shortens the hold
    now[0] = 103.0
    gate.wait_turn()
    assert waits == [7.0]


def test_a_repeated_page_token_is_refused() -> None:
    pages = TokenPaginator("jira")
    pages.advance("a")
    pages.advance("b")
    with pytest.raises(FatalSourceError, match="repeated the page token"):
        pages.advance("a")
    pages.advance(None)
    assert pages.finished


def test_spent_budget_reads_a_successful_answers_rate_limit_headers() -> None:
    import httpx

    from stratmap.connectors.http import spent_budget

    pace = spent_budget("ratelimit-remaining", "ratelimit-reset")  # GitLab's names
    spent = httpx.Response(200, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "1900"})
    assert pace(spent, 1000.0) == 900.0
    assert pace(spent, 1900.0) is None  # already reset
    left = httpx.Response(200, headers={"RateLimit-Remaining": "3", "RateLimit-Reset": "1900"})
    assert pace(left, 1000.0) is None
    assert pace(httpx.Response(200), 1000.0) is None
    odd = httpx.Response(200, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "soon"})
    assert pace(odd, 1000.0) is None


# -- requests that got no answer: which host, what cause (issue 15) ----------------------------


def _failed(cause: BaseException, error_type: type[Exception] | None = None) -> Exception:
    import httpx

    request = httpx.Request("GET", "https://tracker.example:8443/rest/api/2/field")
    error = (error_type or httpx.ConnectError)("connect failed", request=request)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("cause", "fatal", "said"), [
    (socket.gaierror(-2, "Name or service not known"), True,
     "the host name tracker.example could not be resolved"),
    (ConnectionRefusedError(111, "Connection refused"), True,
     "connection to tracker.example refused"),
    (ssl.SSLError(1, "wrong version number"), True,
     "the TLS handshake to tracker.example failed"),
    (ConnectionResetError(104, "reset"), False, "lost its connection to tracker.example"),
])
def test_a_request_without_an_answer_names_the_host_and_the_cause(
        cause: BaseException, fatal: bool, said: str) -> None:
    from stratmap.connectors.base import FatalSourceError, RetriableError
    from stratmap.connectors.http import transport_error

    error = transport_error("jira", "GET /rest/api/2/field", _failed(cause))
    assert isinstance(error, FatalSourceError if fatal else RetriableError)
    assert said in str(error)


def test_requests_errors_are_read_through_urllib3s_reason() -> None:
    import requests

    from stratmap.connectors.base import FatalSourceError
    from stratmap.connectors.http import transport_error

    reason = OSError("Failed to resolve")
    reason.__cause__ = socket.gaierror(-2, "Name or service not known")
    wrapped = requests.exceptions.ConnectionError(
        Exception("Max retries exceeded", reason),
        request=requests.Request("GET", "https://jira.example/rest").prepare())
    error = transport_error("jira", "GET /rest", wrapped)
    assert isinstance(error, FatalSourceError)
    assert "the host name jira.example could not be resolved" in str(error)
