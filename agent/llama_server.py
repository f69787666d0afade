"""``python -m agent.llama_server [llama_cpp.server options]``: llama-cpp-python's OpenAI-compatible
server with the local model on llama.cpp's plain CPU path, so it does not crash on AMX machines
(see :func:`agent.llm.plain_cpu_buffers`). Same options as ``python -m llama_cpp.server``."""

from __future__ import annotations


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    from agent.llm import plain_cpu_buffers

    with plain_cpu_buffers():  # the server loads its models inside
        serve()


if __name__ == "__main__":
    main()
