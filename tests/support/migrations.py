"""A copy of the committed migrations with one more revision, never in the repository: a release that
migrates further than this code knows, or a migration that fails."""

import shutil
import uuid
from pathlib import Path

from alembic.script import ScriptDirectory

from tests.support.app import ROOT


def migrations_copy(directory: Path, extra: str) -> tuple[Path, str]:
    """The committed migrations plus one more revision (its body is `extra`); the copy and the revision id."""
    copied = directory / "migrations"
    shutil.copytree(ROOT / "migrations", copied, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    revision = "f" + uuid.uuid4().hex[:11]
    header = f'"""test revision"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\nrevision = "{revision}"\n'
    header += f'down_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
    (copied / "versions" / f"{revision}_test.py").write_text(header + extra)
    return copied, revision


def previous_revision() -> str:
    """The revision just before the code's head: a database one migration behind."""
    script = ScriptDirectory(str(ROOT / "migrations"))
    down = script.get_revision(script.get_current_head()).down_revision
    assert isinstance(down, str)
    return down


# A later release's migration: a new table, which this release's code never reads.
NEW_TABLE = (
    "def upgrade():\n"
    '    op.create_table("from_a_later_release", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
    "def downgrade():\n"
    '    op.drop_table("from_a_later_release")\n'
)
