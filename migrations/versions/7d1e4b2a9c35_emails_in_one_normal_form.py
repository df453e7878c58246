"""emails in one normal form: NFKC, lower case, IDNA ASCII domains

Revision ID: 7d1e4b2a9c35
Revises: 5c3e9a7d2f10
Create Date: 2026-12-07 04:10:00.000000

Addresses used to be stored only trimmed and lower-cased, so a Unicode domain, its punycode and a
fullwidth spelling could each be an account. This rewrites every stored address (users.email,
users.pending_email, account_tokens.email) to the form app.accounts.models.normalise_email gives.
Where two accounts fold to one address, neither is changed and the ids are logged: which of them is the
mailbox's owner is for a person to decide (the one still spelt the old way can no longer log in, as
login folds the address it is given).
"""

import logging
import unicodedata
from contextlib import suppress

import idna
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7d1e4b2a9c35"
down_revision = "5c3e9a7d2f10"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def normal(email):
    # A frozen copy of normalise_email as of this revision: a later change there must not rewrite history.
    email = unicodedata.normalize("NFKC", email.strip()).lower()
    local, at, domain = email.rpartition("@")
    if not at or not domain:
        return email
    with suppress(idna.IDNAError, UnicodeError):
        domain = idna.encode(domain, uts46=True).decode("ascii")
    return f"{local}@{domain}"


users = sa.table("users", sa.column("id"), sa.column("email"), sa.column("pending_email"))
tokens = sa.table("account_tokens", sa.column("id"), sa.column("email"))


def upgrade():
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email, users.c.pending_email)).all()
    folded = {}
    for row in rows:
        folded.setdefault(normal(row.email), []).append(row)
    for address, owners in folded.items():
        if len(owners) > 1:
            log.warning("emails: users %s fold to one address; left as they are", [str(r.id) for r in owners])
            continue
        row = owners[0]
        pending = normal(row.pending_email) if row.pending_email else None
        if (address, pending) != (row.email, row.pending_email):
            connection.execute(users.update().where(users.c.id == row.id).values(email=address, pending_email=pending))
    for token in connection.execute(sa.select(tokens.c.id, tokens.c.email)).all():
        if normal(token.email) != token.email:
            connection.execute(tokens.update().where(tokens.c.id == token.id).values(email=normal(token.email)))


def downgrade():
    pass  # the old spellings are gone, and the normal form works under the old code too
