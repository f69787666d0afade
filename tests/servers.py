"""Helpers for tests that start a real local server (chroma, llama_cpp.server) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


class PostgresServer:
    """A real PostgreSQL server from Debian's packages (``initdb``/``pg_ctl``, e.g.
    /usr/lib/postgresql/15/bin), in a temp directory of its own, listening on 127.0.0.1 only:
    ``with PostgresServer() as pg:`` then ``pg.url(database)``; ``pg.stop()`` / ``pg.start()``
    restart it on the same port and data (a database going away mid-run). PostgreSQL refuses to
    run as root: as root it runs as the ``postgres`` system user (``runuser``), owning its
    directory. ``PostgresServer.missing()`` says why it cannot run here (None when it can)."""

    USER = "chatrec"

    def __init__(self) -> None:
        import tempfile

        self.bin = self.find_bin()
        assert self.bin is not None, self.missing()
        self.dir = Path(tempfile.mkdtemp(prefix="chatrec-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.port = free_port()
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--locale=C.UTF-8")
        self.start()

    @staticmethod
    def find_bin() -> Path | None:
        import glob
        import shutil

        found = shutil.which("initdb")
        if found and Path(found).resolve().parent.joinpath("pg_ctl").exists():
            return Path(found).resolve().parent
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
        return Path(versions[-1]).parent if versions else None

    @classmethod
    def missing(cls) -> str | None:
        if cls.find_bin() is None:
            return "PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)"
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no 'postgres' user to run PostgreSQL as"
        return None

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.dir, timeout=120)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise AssertionError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}\n{log}")
        return done

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: as if the machine lost power (recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        import shutil

        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def llama_server(*args: str) -> Iterator[str]:
    """A real ``python -m agent.llama_server`` on 127.0.0.1 serving the shipped model; yields its
    ``/v1`` base URL and stops it afterwards. ``args``: more server options."""
    import sys

    from agent.llm import default_model_path

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agent.llama_server", "--model", str(default_model_path()),
                             "--host", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        wait_for_port(port, proc, "llama_cpp.server")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
