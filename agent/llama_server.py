"""``python -m agent.llama_server [llama_cpp.server options]``: llama-cpp-python's OpenAI-compatible
server with the local model on llama.cpp's plain CPU path, so it does not crash on AMX machines
(see :func:`agent.llm.plain_cpu_buffers`). Same options as ``python -m llama_cpp.server``, with one
default changed: ``--interrupt_requests False``. llama_cpp.server answers one request at a time;
its own default cuts a streamed answer short whenever another request arrives, which with several
agents (or several turns at once) truncates their chit-chat and explanations. Requests wait
their turn instead; say ``--interrupt_requests True`` for the old behaviour."""

from __future__ import annotations

import sys


def with_defaults(argv: list[str]) -> list[str]:
    """The command line with this module's defaults for what it does not say."""
    said = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    if "--interrupt_requests" not in said and "--config_file" not in said:
        argv = [*argv, "--interrupt_requests", "False"]
    return argv


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    from agent.llm import plain_cpu_buffers

    sys.argv[1:] = with_defaults(sys.argv[1:])
    with plain_cpu_buffers():  # the server loads its models inside
        serve()


if __name__ == "__main__":
    main()
