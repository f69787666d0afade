"""Many people at once: simulated people talking to ``chatrec serve`` over HTTP, with faults.

    python -m bench.load --sessions 32 --seconds 180        # the issue's size (about 8 minutes)
    python -m bench.load --sessions 8 --seconds 60          # a small run

What runs, all on 127.0.0.1: a PostgreSQL server in a temp directory (tests/servers.py's, as the
``postgres`` user when run as root) holding the sessions; the local model served by
``python -m agent.llama_server`` (the agents use the ``openai`` backend against it); one, then
two ``chatrec serve`` processes on the data home (``CHATREC_HOME``; what is missing is built by
the first process, once). N people talk at once, each in their own session, with the template
simulator's words (agent/evals/simulate.py: they open with a title they liked and a genre, then
reject each list and say one more thing, five turns a dialogue, then a new session), each
waiting for the reply before the next turn; one turn per API process first warms it up (not
counted). Phase 1: one API process for ``--seconds``; phase 2:
two processes (people alternate between them, any turn to either) for ``--seconds``, with the
faults (``--no-faults`` leaves them out), each at its own point of the phase:

* at 20 %: one API process is killed (SIGKILL) while turns run on it; its people carry on with
  the other process. A turn cut off is looked up: stored whole, or not at all (then sent again).
* at 45 %: the database is restarted (stopped, 3 s, started): turns answered 503 with the reason
  meanwhile, then the same turn is sent again.
* at 70 %: the LLM server is stopped for 8 s: the agent's "model unavailable" reply (200, the
  turn not stored, by design), then the model is started again.

At the end every session is read back (GET /sessions/{id}) and compared with what its person
sent and got answered: ``lost`` (answered turns not stored), ``crossed`` (stored turns its person
never sent: another session's, or one stored twice), ``errors_5xx`` (5xx answers other than the
database fault's 503s, which are counted in ``unavailable_503``). Latency is the client's, per
turn; ``turns_per_s`` counts the turns answered within the phase's seconds (the turns still
running at its end are finished, checked and counted in ``turns_sent``, not in the rate); ``llm_share`` is the median share of a turn's server time spent in LLM calls (the router,
chit-chat and explanation replies: the agent's own timings), ``queued_share`` the median share of
a turn's latency it waited for a turn slot of its process (``timings["queued"]``). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "smollm2"


# -- the processes --------------------------------------------------------------------------------


class Proc:
    """A child process with its log in a file; ``url`` once it answers ``health``."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path, port: int, health: str | None) -> None:
        self.name, self.command, self.env, self.port, self.health = name, command, env, port, health
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + wait
        while True:
            try:
                if self.health is None:  # listening is enough (llama_cpp.server queues /v1/models behind turns)
                    import socket

                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.health}", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"{self.name} did not start (log {self.log_path}):\n{tail}")
            time.sleep(0.5)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    from tests.servers import free_port as port

    return port()


# -- the people -----------------------------------------------------------------------------------


def sim_users(home: Path, n: int, seed: int):
    """``n`` simulated people for the template simulator: a target film and three liked films that
    share its first genre (warm ml-100k films of the catalogue; the load test scores no hits)."""
    from agent.evals.simulate import SimUser
    from tools.catalog import load_catalog

    films = [i for i in load_catalog(home, progress=False) if i.warm and i.genres and i.domain == "movie"]
    rng = random.Random(seed)
    users = []
    for k in range(n):
        target = rng.choice(films)
        same = [f for f in films if f.genres[0] == target.genres[0] and f is not target]
        users.append(SimUser(f"person-{k}", target, rng.sample(same, min(3, len(same)))))
    return users


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)  # time.monotonic() of each answered turn
    llm_share: list[float] = field(default_factory=list)
    queued_share: list[float] = field(default_factory=list)
    intents: dict[str, list[float]] = field(default_factory=dict)
    answered: int = 0
    errors_5xx: int = 0
    unavailable_503: int = 0
    llm_down: int = 0
    cut_off: int = 0  # connection lost mid-turn (the killed process)
    cut_off_stored: int = 0
    other_errors: list[str] = field(default_factory=list)


class Person(threading.Thread):
    """One simulated person: sessions of five turns, one turn at a time, until ``stop``."""

    def __init__(self, k: int, user, simulator, servers: list[str], stop: threading.Event, stats: Stats,
                 lock: threading.Lock, sessions: dict) -> None:
        super().__init__(daemon=True, name=f"person-{k}")
        self.k, self.user, self.simulator, self.servers = k, user, simulator, servers
        self.stop_event, self.stats, self.lock, self.sessions = stop, stats, lock, sessions
        self.n = k  # which server the next request goes to (people alternate)

    def server(self) -> str:
        alive = [s for s in self.servers if s not in DEAD]
        self.n += 1
        return alive[self.n % len(alive)]

    def call(self, method: str, path: str, body=None, timeout: float = 180) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server() + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, None

    def stored_users(self, sid: str) -> list[str] | None:
        """The session's stored user turns, asked until a server answers (None: given up)."""
        for _ in range(120):
            try:
                status, state = self.call("GET", f"/sessions/{sid}", timeout=30)
                if status == 200:
                    return [t["text"] for t in state["turns"] if t["role"] == "user"]
            except OSError:
                pass
            time.sleep(0.5)
        return None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.dialogue()
            except Exception as exc:  # noqa: BLE001 - counted, the person goes on
                with self.lock:
                    self.stats.other_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                time.sleep(1)

    def dialogue(self) -> None:
        from agent.evals.simulate import MAX_TURNS

        while True:
            try:
                status, made = self.call("POST", "/sessions", {})
            except OSError:
                status = 0
            if status == 201:
                break
            if status >= 500:
                with self.lock:
                    if status == 503:
                        self.stats.unavailable_503 += 1
                    else:
                        self.stats.errors_5xx += 1
            if self.stop_event.is_set():
                return
            time.sleep(0.5)
        sid = made["session_id"]
        sent: list[str] = []  # the turns answered (or found stored): what the session must hold, in order
        with self.lock:
            self.sessions[sid] = sent
        last_items = None
        turn = 1
        while turn <= MAX_TURNS and not self.stop_event.is_set():
            text = self.simulator.utterance(self.user, turn, last_items)
            started = time.perf_counter()
            try:
                status, reply = self.call("POST", f"/sessions/{sid}/turns", {"text": text})
            except OSError:  # the process died mid-turn: stored whole or not at all?
                stored = self.stored_users(sid)
                with self.lock:
                    self.stats.cut_off += 1
                if stored is not None and stored == sent + [text]:
                    with self.lock:
                        self.stats.cut_off_stored += 1
                    sent.append(text)
                    turn += 1
                continue  # not stored: the same turn again
            took = time.perf_counter() - started
            if status == 200 and "llm_down" in reply.get("notes", []):
                with self.lock:
                    self.stats.llm_down += 1
                time.sleep(1)
                continue  # nothing stored (by design): say it again
            if status == 200:
                sent.append(text)
                timings = reply.get("timings") or {}
                llm = timings.get("router", 0) + timings.get("rerank", 0)
                if reply["intent"] in ("chitchat", "explain"):
                    llm += timings.get("reply", 0)
                with self.lock:
                    self.stats.answered += 1
                    self.stats.done_at.append(time.monotonic())
                    self.stats.latencies.append(took)
                    self.stats.intents.setdefault(reply["intent"], []).append(took)
                    if timings.get("total"):
                        self.stats.llm_share.append(min(1.0, llm / timings["total"]))
                    self.stats.queued_share.append(min(1.0, timings.get("queued", 0) / took))
                last_items = reply["items"] if reply["intent"] == "recommend" and reply["items"] else None
                turn += 1
                continue
            if status == 503:  # the database: not saved unless it was (a lost commit answer); look
                with self.lock:
                    self.stats.unavailable_503 += 1
                stored = self.stored_users(sid)
                if stored is not None and stored == sent + [text]:
                    sent.append(text)
                    turn += 1
                continue
            with self.lock:
                if status >= 500:
                    self.stats.errors_5xx += 1
                self.stats.other_errors.append(f"{status}: {json.dumps(reply)[:200]}")
            time.sleep(0.5)
            stored = self.stored_users(sid)
            if stored is not None and stored == sent + [text]:
                sent.append(text)
                turn += 1


DEAD: set[str] = set()  # API servers killed by the fault


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def warm_up(servers: list[str], user, simulator) -> None:
    """One turn on each API process before the clock starts, not counted: first searches and the
    LLM client's first request (it settles the endpoint's response format) are not the load."""
    for url in servers:
        person = Person(0, user, simulator, [url], threading.Event(), Stats(), threading.Lock(), {})
        status, made = person.call("POST", "/sessions", {})
        person.call("POST", f"/sessions/{made['session_id']}/turns", {"text": simulator.utterance(user, 1, None)})
        person.call("DELETE", f"/sessions/{made['session_id']}")


def run_phase(name: str, servers: list[str], users, simulator, seconds: float, faults: list | None = None) -> dict:
    stats, lock, sessions = Stats(), threading.Lock(), {}
    stop = threading.Event()
    warm_up(servers, users[0], simulator)
    people = [Person(k, u, simulator, servers, stop, stats, lock, sessions) for k, u in enumerate(users)]
    started = time.monotonic()
    for p in people:
        p.start()
    for at, what, action in sorted(faults or [], key=lambda f: f[0]):
        time.sleep(max(0.0, started + at * seconds - time.monotonic()))
        print(f"[{name}] {time.monotonic() - started:5.1f} s: fault — {what}", flush=True)
        action()
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    stop.set()
    for p in people:
        p.join(300)
    wall = time.monotonic() - started
    # the final check: each session's stored turns are exactly the ones its person had answered
    checker = Person(0, users[0], simulator, servers, threading.Event(), stats, lock, {})
    lost = crossed = reordered = stored_total = 0
    for sid, sent in sessions.items():
        stored = checker.stored_users(sid)
        if stored is None:
            stored = []
            stats.other_errors.append(f"session {sid[:6]}… could not be read back")
        stored_total += len(stored)
        if stored != sent:
            lost += sum((Counter(sent) - Counter(stored)).values())  # answered, not stored
            crossed += sum((Counter(stored) - Counter(sent)).values())  # stored, never sent here (or twice)
            reordered += Counter(sent) == Counter(stored)
    out = {"turns_sent": sum(len(s) for s in sessions.values()), "turns_stored": stored_total, "lost": lost,
           "crossed": crossed, "reordered": reordered, "errors_5xx": stats.errors_5xx, "unavailable_503": stats.unavailable_503,
           "llm_down_replies": stats.llm_down, "cut_off": stats.cut_off, "cut_off_stored": stats.cut_off_stored,
           "dialogues": len(sessions), "wall_s": round(wall, 1),
           "turns_per_s": round(sum(1 for t in stats.done_at if t <= started + seconds) / seconds, 3),
           "p50_s": pct(stats.latencies, 50), "p95_s": pct(stats.latencies, 95),
           "llm_share": pct(stats.llm_share, 50), "queued_share": pct(stats.queued_share, 50),
           "p95_by_intent": {k: pct(v, 95) for k, v in sorted(stats.intents.items())},
           "other_errors": stats.other_errors[:5]}
    print(f"[{name}] {json.dumps(out)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=32, help="people talking at once (default 32)")
    parser.add_argument("--seconds", type=float, default=180, help="seconds per phase (default 180)")
    parser.add_argument("--no-faults", action="store_true", help="leave out the faults of phase 2")
    parser.add_argument("--llm-threads", type=int, default=2, help="CPU threads of the LLM server (default 2)")
    parser.add_argument("--concurrency", type=int, default=4, help="turns at once per API process (default 4)")
    parser.add_argument("--tuned-router", action="store_true",
                        help="serve the model with the shipped router adapter and route with it (default: "
                             "the openai backend's few-shot router on the base model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        parser.error("--sessions must be at least 1 and --seconds more than 0")

    from agent.config import Settings
    from agent.evals.simulate import TemplateSimulator
    from agent.llm import default_model_path
    from agent.router import ROUTER_ADAPTER
    from bench.common import emit
    from tests.servers import PostgresServer

    if (why := PostgresServer.missing()) is not None:
        sys.exit(f"bench.load needs PostgreSQL: {why}")
    settings = Settings()
    work = Path(tempfile.mkdtemp(prefix="chatrec-load-"))
    print(f"bench.load: {args.sessions} people, {args.seconds:g} s per phase, data home {settings.home}, "
          f"logs in {work}", flush=True)
    pg = PostgresServer()
    procs: list[Proc] = []
    try:
        sessions_url = pg.create_database("load")
        llm_port = free_port()
        llm = Proc("llm", [sys.executable, "-m", "agent.llama_server", "--model", str(default_model_path()),
                           "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(llm_port),
                           "--n_ctx", "4096", "--n_threads", str(args.llm_threads),
                           "--n_threads_batch", str(args.llm_threads), "--interrupt_requests", "False"]
                  + (["--lora_path", str(ROUTER_ADAPTER)] if args.tuned_router else []),
                   dict(os.environ), work, llm_port, None)  # the model is loaded before it listens
        procs.append(llm)
        llm.start(wait=120)
        env = {**os.environ, "CHATREC_SESSIONS_URL": sessions_url, "CHATREC_LLM_BACKEND": "openai",
               "CHATREC_LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1", "CHATREC_LLM_MODEL": MODEL_NAME,
               "CHATREC_LLM_EXTRA_BODY": json.dumps({"repeat_penalty": 1.0}), "CHATREC_LLM_TIMEOUT": "60",
               "CHATREC_TURN_CONCURRENCY": str(args.concurrency), "CHATREC_LOG_LEVEL": "WARNING",
               "CHATREC_ROUTER_MODE": "tuned" if args.tuned_router else "few-shot"}
        apis = []
        for k in range(2):
            port = free_port()
            apis.append(Proc(f"api{k + 1}", [sys.executable, "-c", "from agent.cli import app; app()", "serve",
                                             "--port", str(port)],
                             env, work, port, "/health"))
        procs += apis
        started = time.monotonic()
        apis[0].start(wait=1800)  # the first start builds what the data home lacks
        print(f"api1 up in {time.monotonic() - started:.0f} s", flush=True)
        users = sim_users(settings.home, args.sessions, args.seed)
        simulator = TemplateSimulator(args.seed)
        urls = [f"http://127.0.0.1:{a.port}" for a in apis]
        one = run_phase("1 process", urls[:1], users, simulator, args.seconds)
        apis[1].start(wait=600)

        def kill_api() -> None:
            DEAD.add(urls[1])
            apis[1].kill()

        def restart_db() -> None:
            pg.stop("fast")
            time.sleep(3)
            pg.start()

        def stop_llm() -> None:
            llm.stop()
            time.sleep(8)
            llm.start(wait=120)

        faults = [] if args.no_faults else [(0.2, "kill API process 2 (SIGKILL)", kill_api),
                                            (0.45, "restart PostgreSQL", restart_db),
                                            (0.7, "stop the LLM server for 8 s", stop_llm)]
        two = run_phase("2 processes", urls, users, simulator, args.seconds, faults)
    finally:
        for p in reversed(procs):
            p.stop()
        pg.close()
    emit({"bench": "load", "sessions": args.sessions, "seconds": args.seconds, "faults": not args.no_faults,
          "turns_sent": one["turns_sent"] + two["turns_sent"], "turns_stored": one["turns_stored"] + two["turns_stored"],
          "lost": one["lost"] + two["lost"], "crossed": one["crossed"] + two["crossed"],
          "reordered": one["reordered"] + two["reordered"],
          "errors_5xx": one["errors_5xx"] + two["errors_5xx"],
          "unavailable_503": one["unavailable_503"] + two["unavailable_503"],
          "turns_per_s_1": one["turns_per_s"], "turns_per_s_2": two["turns_per_s"],
          "p50_s_1": one["p50_s"], "p50_s_2": two["p50_s"], "p95_s_1": one["p95_s"], "p95_s_2": two["p95_s"],
          "llm_share_1": one["llm_share"], "llm_share_2": two["llm_share"],
          "queued_share_1": one["queued_share"], "queued_share_2": two["queued_share"],
          "p95_by_intent_1": one["p95_by_intent"], "p95_by_intent_2": two["p95_by_intent"],
          "cut_off": two["cut_off"], "cut_off_stored": two["cut_off_stored"],
          "llm_down_replies": two["llm_down_replies"]})


if __name__ == "__main__":
    main()
