"""The measured clients, each run in its own process by :mod:`benchmarks.run`.

``python -m benchmarks.clients KIND '{json options}'`` runs one client against a load server
and prints one JSON line (what it read, its own timing). The parent measures wall time, peak
RSS (``wait4``) and requests (the server's count).

* ``stratmap``: the product's sync (:func:`flows.pipeline.sync_source` over
  :class:`connectors.jira.JiraConnector`) into a fresh SQLite store; with ``split`` one source
  per project, synced at once on threads as the Prefect flow runs a plan's sources.
* ``floor``: the same requests with httpx and asyncio, the same concurrency, JSON decoded and
  thrown away: what fetching alone costs.
* ``jira-library``: plain ``jira`` usage, ``search_issues`` (Resource objects), sequential;
  run from the peers' venv (``benchmarks/.venv-peers``), never stratmap's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from datetime import datetime
from typing import Any

TOKEN = "bench-token"
EMAIL = "bench@northwind.example"


def _auth(deployment: str) -> dict[str, str]:
    import base64

    if deployment == "cloud":
        raw = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}
    return {"Authorization": f"Bearer {TOKEN}"}


# -- stratmap -----------------------------------------------------------------------------


def run_stratmap(options: dict[str, Any]) -> dict[str, Any]:
    from stratmap.connectors.jira import JiraConnector
    from stratmap.flows.pipeline import sync_source
    from stratmap.models.plan import JiraSource
    from stratmap.models.store import Store

    started = datetime.fromisoformat(options["started"])
    deployment = options["deployment"]
    scopes: dict[str, str] = options["scopes"]
    concurrency = int(options.get("concurrency", 4))
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def sync(name: str, scope: str) -> None:
        try:
            config = JiraSource(
                kind="jira", url=options["url"], token="env:JIRA_API_TOKEN", scope=scope,
                email=EMAIL if deployment == "cloud" else None, deployment=deployment,
                page_size=int(options.get("page_size", 100)), concurrency=concurrency,
            )
            with Store(options["db"]) as store, JiraConnector(name, config, token=TOKEN) as jira:
                result = sync_source(jira, store, started=started)
            results[name] = {"items": result.items, "pages": result.pages,
                             "requests": result.requests, "seconds": round(result.seconds, 3)}
        except BaseException as error:  # reported by the parent
            errors.append(error)

    if len(scopes) == 1:
        ((name, scope),) = scopes.items()
        sync(name, scope)
    else:
        threads = [threading.Thread(target=sync, args=item) for item in scopes.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    with Store(options["db"]) as store:
        counts = store.counts()
    return {"sources": results, "items": sum(r["items"] for r in results.values()),
            "client_requests": sum(r["requests"] for r in results.values()), "rows": counts}


# -- the floor ------------------------------------------------------------------------------


def _changelog_short(issue: dict[str, Any]) -> bool:
    changelog = issue.get("changelog") or {}
    return int(changelog.get("total") or 0) > len(changelog.get("histories") or [])


def _comments_short(issue: dict[str, Any]) -> bool:
    comment = (issue.get("fields") or {}).get("comment") or {}
    return int(comment.get("total") or 0) > len(comment.get("comments") or [])


async def _floor(options: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url = options["url"]
    cloud = options["deployment"] == "cloud"
    concurrency = int(options.get("concurrency", 4))
    size = int(options.get("page_size", 100))
    fields = options["fields"]
    jql = f"({options['scope']}) ORDER BY updated ASC"
    gate = asyncio.Semaphore(concurrency)
    tally = {"issues": 0, "requests": 0, "bytes": 0}
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, headers=_auth(options["deployment"]),
                                 limits=limits, timeout=60) as client:

        async def call(method: str, path: str, body: Any = None, params: Any = None) -> Any:
            while True:
                tally["requests"] += 1
                response = await client.request(method, path, json=body, params=params)
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After") or 1))
                    continue
                response.raise_for_status()
                tally["bytes"] += len(response.content)
                return response.json()

        async def gated(method: str, path: str, body: Any = None, params: Any = None) -> Any:
            async with gate:
                return await call(method, path, body, params)

        async def bulkfetch(keys: list[str]) -> None:
            token = None
            while True:
                body: dict[str, Any] = {"issueIdsOrKeys": keys, "maxResults": 1000}
                if token:
                    body["nextPageToken"] = token
                data = await gated("POST", "/rest/api/3/changelog/bulkfetch", body)
                token = data.get("nextPageToken")
                if not token:
                    return

        async def changelog(key: str) -> None:
            start = 0
            while True:
                data = await gated("GET", f"/rest/api/2/issue/{key}/changelog",
                                   params={"startAt": start, "maxResults": 100})
                start += len(data.get("values") or [])
                if data.get("isLast") or start >= int(data.get("total") or 0):
                    return

        async def complete(issues: list[dict[str, Any]]) -> None:
            """The reads that complete a page's histories, as stratmap needs them."""
            short = [i for i in issues if _changelog_short(i)]
            work = []
            if cloud and short:
                work.append(bulkfetch([i["key"] for i in short]))
            if not cloud:
                work += [changelog(i["key"]) for i in short]
            api = 3 if cloud else 2
            work += [gated("GET", f"/rest/api/{api}/issue/{i['key']}/comment")
                     for i in issues if _comments_short(i)]
            await asyncio.gather(*work)
            tally["issues"] += len(issues)

        await call("GET", f"/rest/api/{3 if cloud else 2}/field")
        await call("GET", "/rest/api/2/status")
        tasks: list[asyncio.Task[None]] = []
        if cloud:
            # The cursor is sequential; each page's completion overlaps the next page.
            token = None
            while True:
                body: dict[str, Any] = {"jql": jql, "fields": fields, "expand": "changelog",
                                        "maxResults": size}
                if token:
                    body["nextPageToken"] = token
                data = await call("POST", "/rest/api/3/search/jql", body)
                tasks.append(asyncio.create_task(complete(data.get("issues") or [])))
                token = None if data.get("isLast") else data.get("nextPageToken")
                if not token:
                    break
        else:
            first = await call("POST", "/rest/api/2/search",
                               {"jql": jql, "startAt": 0, "maxResults": size, "fields": fields,
                                "expand": ["changelog"]})
            offsets = iter(range(size, int(first.get("total") or 0), size))

            async def worker() -> None:
                # ``concurrency`` workers, each reading a page then completing it: every
                # slot of the gate stays busy and at most a few pages are held at once.
                for start in offsets:
                    data = await gated("POST", "/rest/api/2/search",
                                       {"jql": jql, "startAt": start, "maxResults": size,
                                        "fields": fields, "expand": ["changelog"]})
                    await complete(data.get("issues") or [])

            tasks.append(asyncio.create_task(complete(first.get("issues") or [])))
            tasks += [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.gather(*tasks)
    return {"items": tally["issues"], "client_requests": tally["requests"],
            "bytes": tally["bytes"]}


def run_floor(options: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_floor(options))


# -- the jira library -------------------------------------------------------------------------


def run_jira_library(options: dict[str, Any]) -> dict[str, Any]:
    from jira import JIRA

    client = JIRA(server=options["url"], token_auth=TOKEN, get_server_info=False,
                  options={"check_update": False}, max_retries=3)
    jql = f"({options['scope']}) ORDER BY updated ASC"
    issues = client.search_issues(jql, maxResults=False, expand="changelog")
    histories = sum(len(issue.changelog.histories) for issue in issues)
    comments = sum(len(issue.fields.comment.comments) for issue in issues)
    return {"items": len(issues), "histories": histories, "comments": comments}


RUNNERS = {"stratmap": run_stratmap, "floor": run_floor, "jira-library": run_jira_library}


def main() -> None:
    kind, raw = sys.argv[1], sys.argv[2]
    os.environ.setdefault("JIRA_API_TOKEN", TOKEN)
    clock = time.perf_counter()
    out = RUNNERS[kind](json.loads(raw))
    out["inner_seconds"] = round(time.perf_counter() - clock, 3)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
