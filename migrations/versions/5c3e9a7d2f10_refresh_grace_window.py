"""refresh grace window: the token a refresh rotated, and when

Revision ID: 5c3e9a7d2f10
Revises: 39a79edcd108
Create Date: 2026-12-07 03:55:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5c3e9a7d2f10"
down_revision = "39a79edcd108"
branch_labels = None
depends_on = None


def upgrade():
    # Existing sessions have rotated no token yet: no grace for any of them, as before.
    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_jti", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("refresh_sessions", schema=None) as batch_op:
        batch_op.drop_column("rotated_at")
        batch_op.drop_column("previous_jti")
