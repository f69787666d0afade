"""Every prompt the product sends, one text file per use; nothing else lives here."""

from importlib import resources


def read_prompt(name: str) -> str:
    """The template in prompts/NAME (str.format fields in braces where the file has them)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def read_instruct_templates() -> dict:
    """The instruction templates (prompts/instruct_templates.toml): `chatrec tune data` phrases
    its asks from them and the pointwise re-ranker asks with the same words."""
    import tomllib

    return tomllib.loads(read_prompt("instruct_templates.toml"))


def read_replies() -> dict[str, str]:
    """The fixed replies (prompts/replies.toml) the agent gives without asking the LLM."""
    import tomllib

    return tomllib.loads(read_prompt("replies.toml"))
