"""`flask new-resource NAME`: a new resource folder and test module, made from the items example."""

import re
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = "items"
# Words of the example that are not its name: the key of every page, dict.items(), the page helper.
KEPT = ('["items"]', ".items()", "items = page_items", "page_items", "keyset")


def rename(text: str, plural: str, singular: str) -> str:
    """The example's text with items/item/Item(s) replaced by the new names; page keys stay."""
    kept = {f"\0{n}\0": word for n, word in enumerate(KEPT)}
    for token, word in kept.items():
        text = text.replace(word, token)
    title = singular[:1].upper() + singular[1:]
    # (?<=[a-z]) as well as \b: operation ids are camelCase (listItems, createItem).
    text = re.sub(r"(?:\b|(?<=[a-z]))Items\b", plural[:1].upper() + plural[1:], text)
    text = re.sub(r"\bitems\b", plural, text)
    text = re.sub(r"(?:\b|(?<=[a-z]))Item", title, text)
    text = re.sub(r"\bitem", singular, text)
    for token, word in kept.items():
        text = text.replace(token, word)
    return text


@click.command("new-resource")
@click.argument("plural")
@click.option("--singular", help="The name of one (default: PLURAL without its final s).")
def new_resource(plural: str, singular: str | None) -> None:
    """Make app/PLURAL/ and tests/PLURAL/ from the items example and register the namespace."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*s", plural):
        raise click.BadParameter("use a lower-case plural such as notes or invoices", param_hint="PLURAL")
    singular = singular or plural[:-1]
    made = []
    for folder in (ROOT / "app" / EXAMPLE, ROOT / "tests" / EXAMPLE):
        target = folder.parent / plural
        if target.exists():
            raise click.ClickException(f"{target.relative_to(ROOT)} exists already")
        target.mkdir()
        for source in sorted(folder.glob("*.py")):
            name = source.name.replace(EXAMPLE, plural)
            (target / name).write_text(rename(source.read_text(), plural, singular))
            made.append(f"{target.relative_to(ROOT)}/{name}")
    api = ROOT / "app" / "api.py"
    text = api.read_text()
    text = text.replace(
        f"from app.{EXAMPLE} import routes as {EXAMPLE}\n",
        f"from app.{EXAMPLE} import routes as {EXAMPLE}\nfrom app.{plural} import routes as {plural}\n",
    )
    text = text.replace(f"{EXAMPLE}.ns, ", f"{EXAMPLE}.ns, {plural}.ns, ")
    api.write_text(text)
    click.echo("Made " + ", ".join(made) + "; registered in app/api.py.")
    click.echo(f'Next: flask db migrate -m "add {plural}", review it, then pytest tests/{plural}.')
