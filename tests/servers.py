"""Helpers for tests that start a real local server (chroma, llama_cpp.server) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 60) -> None:
    """Until something listens on ``port``; fails if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.2)


class DroppingEndpoint:
    """A server on 127.0.0.1 that takes each connection and drops it at once (a reset, no
    answer), counting them: how many times a client tries a dead endpoint before it gives up.
    ``with DroppingEndpoint() as dead:`` then ``dead.url`` and ``len(dead.attempts)``."""

    def __init__(self) -> None:
        import threading

        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._server.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.attempts: list[float] = []  # when each connection came (time.monotonic())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import struct

        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            self.attempts.append(time.monotonic())
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
            conn.close()

    def __enter__(self) -> DroppingEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


class SlackApiRecorder:
    """A stand-in for Slack's Web API on 127.0.0.1 for a real ``slack_sdk.WebClient``
    (``base_url=recorder.url``): it records every call — method, parameters (JSON or form body,
    ``blocks`` decoded), the Authorization header — and answers like Slack (``auth.test`` names
    bot UBOT in team T0TEST; ``chat.postMessage`` returns a new ts). ``wait_for`` polls."""

    TEAM, BOT_USER, BOT_ID = "T0TEST", "UBOT", "BBOT"

    def __init__(self) -> None:
        import itertools
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl

        self.calls: list[dict] = []
        self._lock = threading.Lock()
        ts = itertools.count(1)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                method = self.path.split("?")[0].rsplit("/", 1)[-1]
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = dict(parse_qsl(raw))
                if isinstance(params.get("blocks"), str):
                    params["blocks"] = json.loads(params["blocks"])
                answer: dict = {"ok": True}
                if method == "auth.test":
                    answer |= {"url": "https://test.slack.com/", "team": "Test", "user": "chatrec",
                               "team_id": recorder.TEAM, "user_id": recorder.BOT_USER, "bot_id": recorder.BOT_ID,
                               "is_enterprise_install": False}
                elif method == "chat.postMessage":
                    answer |= {"channel": params.get("channel"), "ts": f"1800000000.{next(ts):06d}",
                               "message": {"text": params.get("text"), "user": recorder.BOT_USER}}
                elif method == "chat.update":
                    answer |= {"channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text")}
                with recorder._lock:
                    recorder.calls.append({"method": method, "params": params, "answer": answer,
                                           "authorization": self.headers.get("Authorization")})
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def of(self, method: str) -> list[dict]:
        """The parameters of each call to ``method`` so far, in order."""
        with self._lock:
            return [c["params"] for c in self.calls if c["method"] == method]

    def wait_for(self, method: str, count: int = 1, where=lambda params: True, seconds: float = 120) -> list[dict]:
        """Polls until ``count`` calls to ``method`` match ``where``; fails when time runs out."""
        deadline = time.monotonic() + seconds
        while True:
            found = [p for p in self.of(method) if where(p)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"no {count} {method} call(s) within {seconds:.0f} s: {self.calls}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
