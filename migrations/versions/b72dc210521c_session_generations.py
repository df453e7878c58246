"""session generations: a password change or a disabled account ends sessions a racing login is making

Revision ID: b72dc210521c
Revises: 1e1805bbcd89
Create Date: 2026-12-07 02:25:38.419747

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b72dc210521c"
down_revision = "1e1805bbcd89"
branch_labels = None
depends_on = None


def upgrade():
    # Every existing session carries generation 0, like its user: all of them keep working.
    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")

    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.drop_column("generation")
