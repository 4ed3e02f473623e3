"""What a request that got no HTTP answer means, for every client: httpx (GitHub, GitLab,
Linear, Redmine, Azure DevOps) and requests (Jira, through the ``jira`` library).

Kept apart from :mod:`stratmap.connectors.http` (the httpx client) so that a Jira source
reads its errors without importing httpx.
"""

from __future__ import annotations

import functools
import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from stratmap.connectors.base import FatalSourceError, RetriableError, SourceError

URL_HINT = "check the source's url"



@dataclass(frozen=True)
class _Classes:
    invalid_url: tuple[type[Exception], ...]
    timeout: tuple[type[Exception], ...]
    connection: tuple[type[Exception], ...]


@functools.cache
def _classes(with_httpx: bool) -> _Classes:
    """The clients' exception classes. httpx's only once httpx is loaded: an error cannot
    be one of its classes before, and a Jira run never loads it (its import was a tenth of
    a run that changed nothing)."""
    invalid: list[type[Exception]] = [
        requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema]
    timeout: list[type[Exception]] = [requests.exceptions.Timeout]
    connection: list[type[Exception]] = [
        requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError]
    if with_httpx:
        import httpx

        invalid += [httpx.UnsupportedProtocol, httpx.InvalidURL]
        timeout.append(httpx.TimeoutException)
        connection.append(httpx.TransportError)
    return _Classes(tuple(invalid), tuple(timeout), tuple(connection))


def transport_error(source: str, what: str, error: Exception, *,
                    url_hint: str = URL_HINT) -> SourceError:
    """A request that got no HTTP answer, classed by how to recover: the one reading of
    httpx's (GitHub, GitLab, Linear, Redmine) and requests' (Jira) exceptions.

    A bad url or a certificate that fails verification is fatal; a timeout or a lost
    connection is retried; anything else the client refused is fatal.
    """
    classes = _classes("httpx" in sys.modules)
    if isinstance(error, classes.invalid_url):
        return FatalSourceError(source, f"{what}: invalid url", hint=url_hint)
    if isinstance(error, requests.exceptions.SSLError) or isinstance(
            error.__cause__ or error.__context__, ssl.SSLCertVerificationError):
        return FatalSourceError(source, f"{what}: TLS verification failed", hint=url_hint)
    host = _host(error)
    at = f" to {host}" if host else ""
    causes = list(_causes(error))
    if any(isinstance(c, socket.gaierror) for c in causes):
        # A name that does not resolve will not resolve in ten seconds either: stop now.
        return FatalSourceError(source, f"{what}: the host name {host or ''} could not be "
                                "resolved (no such host, or no DNS)", hint=url_hint)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return FatalSourceError(source, f"{what}: connection{at} refused (nothing listens "
                                "there: a wrong host or port, or the server is down)",
                                hint=url_hint)
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return FatalSourceError(source, f"{what}: the TLS handshake{at} failed", hint=url_hint)
    if isinstance(error, classes.timeout):
        return RetriableError(source, f"{what}{at} timed out")
    if isinstance(error, classes.connection):
        return RetriableError(source, f"{what} lost its connection{at} "
                              f"({type(error).__name__})")
    return FatalSourceError(source, f"{what} failed ({type(error).__name__})", hint=url_hint)


def _host(error: Exception) -> str | None:
    """The host a failed request was for, from the client's exception."""
    request = None
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(error, httpx.RequestError):
        try:
            request = error.request
        except RuntimeError:  # httpx raises when the error carries no request
            request = None
        return request.url.host if request is not None else None
    url = getattr(getattr(error, "request", None), "url", None)
    if isinstance(url, str):
        try:
            return urlsplit(url).hostname or None
        except ValueError:
            return None
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, through ``__cause__``/``__context__``, urllib3's
    ``reason`` and exceptions carried as arguments (requests wraps urllib3's that way)."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *current.args]
        todo.extend(e for e in linked if isinstance(e, BaseException))


__all__ = ["URL_HINT", "transport_error"]
