"""A small client for headless Chromium over the DevTools protocol, for testing pages.

Starts Debian's ``chromium`` with a throwaway profile and no network chatter, opens a page
in a new tab, and collects what a person would notice: console errors, uncaught
exceptions, and log entries such as a blocked resource or a Content-Security-Policy
violation. ``websockets`` (sync client) speaks the protocol; nothing is downloaded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)
START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


def chromium() -> str | None:
    """The Chromium executable, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    pass


@dataclass
class Tab:
    """One page, attached through a flat DevTools session."""

    browser: Browser
    session: str
    errors: list[str] = field(default_factory=list)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def open(self, url: str) -> None:
        """Navigate and wait until the page has loaded."""
        self.browser.forget("Page.loadEventFired", session=self.session)
        answer = self.call("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self.browser.wait_for("Page.loadEventFired", session=self.session)
        for _ in range(200):  # the load event of about:blank may have come first
            if self.evaluate("document.readyState === 'complete' "
                             "&& location.href !== 'about:blank'"):
                return
            time.sleep(0.05)
        raise BrowserError(f"{url} did not finish loading")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression!r} threw: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path, *, width: int = 1280, height: int | None = None) -> Path:
        """A PNG of the page at ``width`` CSS pixels: the whole page, or its top ``height``."""
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        shown = min(full, height) if height else full
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=shown,
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png",
                         clip={"x": 0, "y": 0, "width": width, "height": shown, "scale": 1},
                         captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


class Browser:
    """A headless Chromium started for the tests, spoken to over one WebSocket."""

    def __init__(self, executable: str, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "chromium.log"
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [executable, *FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-port=0", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        lines: list[str] = []
        while time.monotonic() < deadline and self.process.poll() is None:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) == 2:
                    break
            time.sleep(0.05)
        if len(lines) != 2:
            self.close()
            raise BrowserError(f"Chromium did not start; see {self.log}")
        self.socket: ClientConnection = connect(
            f"ws://127.0.0.1:{lines[0]}{lines[1]}", max_size=None, proxy=None,
            open_timeout=START_TIMEOUT)
        self._next = 0
        self._events: list[dict[str, Any]] = []
        self._tabs: dict[str, Tab] = {}

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            answer = self._receive()
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    def forget(self, event: str, *, session: str | None = None) -> None:
        self._events = [e for e in self._events
                        if not (e["method"] == event and e.get("sessionId") == session)]

    def wait_for(self, event: str, *, session: str | None = None) -> dict[str, Any]:
        for seen in self._events:
            if seen["method"] == event and seen.get("sessionId") == session:
                self._events.remove(seen)
                return seen
        while True:
            answer = self._receive()
            if answer.get("method") == event and answer.get("sessionId") == session:
                self._events.remove(answer)
                return answer

    def _receive(self) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = json.loads(self.socket.recv(timeout=CALL_TIMEOUT))
        except TimeoutError as error:
            raise BrowserError("Chromium stopped answering") from error
        if "method" in answer:
            self._events.append(answer)
            self._note(answer)
        return answer

    def _note(self, event: dict[str, Any]) -> None:
        """Keep what the DevTools console would show as an error, per tab."""
        tab = self._tabs.get(event.get("sessionId") or "")
        if tab is None:
            return
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            tab.errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            tab.errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            tab.errors.append(f"log ({entry.get('source')}): {entry.get('text')} "
                              f"{entry.get('url', '')}")

    def tab(self, *, width: int = 1280, height: int = 900) -> Tab:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        self._tabs[session] = tab
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            tab.call(domain)
        tab.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)
        return tab

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def required() -> bool:
    """Whether a missing Chromium fails the tests (CI) instead of skipping them."""
    return bool(os.environ.get("STRATMAP_REQUIRE_BROWSER"))
