"""The ``chatrec`` command line: the app and its command table.

The commands live in one module per group: ``data`` (datasets, the graph model), ``items`` (the
item store, titles), ``chat`` (the router and the agent's front doors), ``evaluation``
(measurements and their report), ``tuning`` (instruction data, LoRA tuning), ``xrec`` (XRec's graph adapter); ``common`` holds
what they share. Each command imports what it needs when it runs, so ``chatrec --help`` is fast.
"""

from __future__ import annotations

import typer

from agent.cli import chat, data, evaluation, items, tuning, xrec

app = typer.Typer(help="Chat-Rec style conversational recommender: data, graph model, and (later) the agent.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(data.data_app, name="data")
app.add_typer(items.items_app, name="items")
app.add_typer(tuning.tune_app, name="tune")
app.add_typer(xrec.xrec_app, name="xrec")

# the top-level commands, in the order `chatrec --help` lists them
app.command()(data.train)
app.command()(data.evaluate)
app.command()(data.recommend)
app.command()(items.resolve)
app.command()(chat.route)
app.command()(evaluation.simulate)
app.command()(chat.chat)
app.command()(chat.slack)
app.command()(chat.serve)
app.command("eval-dialogues")(evaluation.eval_dialogues)
app.command("eval-explain")(evaluation.eval_explain)
app.command()(chat.sessions)
app.command("tune-router")(tuning.tune_router)  # also `chatrec tune router`
app.command("eval-rerank")(evaluation.eval_rerank)
app.command("eval-crs")(evaluation.eval_crs)
app.command()(evaluation.report)

__all__ = ["app"]

if __name__ == "__main__":
    app()
