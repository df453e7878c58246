"""mail generations: a mailed token stays void once a new password, address or disabling came since

Revision ID: 39a79edcd108
Revises: b72dc210521c
Create Date: 2026-12-07 02:31:01.074151

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "39a79edcd108"
down_revision = "b72dc210521c"
branch_labels = None
depends_on = None


def upgrade():
    # Outstanding tokens carry generation 0, like their users: they keep working until they expire.
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mail_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("mail_generation")

    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.drop_column("generation")
