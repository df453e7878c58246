"""users.pending_email: an address waiting for its confirmation

Revision ID: 1e1805bbcd89
Revises: 2b20d5b48041
Create Date: 2026-12-07 01:42:02.770888

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "1e1805bbcd89"
down_revision = "2b20d5b48041"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_email", sa.String(length=254), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("pending_email")
