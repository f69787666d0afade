"""The web page: ``python app.py`` (then open http://127.0.0.1:7860).

The first run builds what the agent needs in the data home (the item store, a few minutes; the
graph model, about a minute) with progress in this terminal; later runs start in seconds.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chatrec's web page: chat with the recommender beside its "
                                                 "recommendations as cards (why? / 👍 / 👎 on each).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--backend", choices=["local", "openai"], default=None,
                        help="LLM backend (default: settings, i.e. local llama.cpp with the shipped model)")
    args = parser.parse_args(argv)

    from agent.cli.common import load_settings
    from agent.agent import Agent
    from agent.llm import LLMUnavailable
    from agent.web import serve

    settings = load_settings(args.backend)  # also sets up logging
    print(f"chatrec: preparing the agent (data home {settings.home}; the first run builds the store and model)",
          flush=True)
    try:
        agent = Agent.from_settings(settings, progress=True)
    except (LLMUnavailable, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"chatrec: open http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    serve(agent, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
