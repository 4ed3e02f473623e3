"""One sync in its own process, for tests that kill it: ``python -m tests.fakes.sync_process
'{"url": ..., "db": ..., "deployment": ..., "started": ..., ...}'``.

It runs the product's path (:func:`flows.pipeline.sync_source` over a real
:class:`connectors.jira.JiraConnector` into a real store) and exits 0 when the sync is done.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


def main() -> None:
    from stratmap.connectors.jira import JiraConnector
    from stratmap.flows.pipeline import sync_source
    from stratmap.models.plan import JiraSource
    from stratmap.models.store import Store

    options = json.loads(sys.argv[1])
    config = JiraSource.model_validate({
        "kind": "jira",
        "url": options["url"],
        "email": options.get("email"),
        "token": "env:JIRA_API_TOKEN",
        "scope": options.get("scope", "project = WEB"),
        "deployment": options["deployment"],
        "page_size": options.get("page_size", 20),
        "concurrency": options.get("concurrency", 4),
    })
    with Store(options["db"]) as store, JiraConnector(
        options.get("name", "jira"), config, token=options["token"]
    ) as connector:
        sync_source(connector, store, started=datetime.fromisoformat(options["started"]))


if __name__ == "__main__":
    main()
