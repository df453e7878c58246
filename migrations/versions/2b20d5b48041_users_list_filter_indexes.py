"""indexes for the users list filters: role, is_active, email and name search

Revision ID: 2b20d5b48041
Revises: df91b09e9b64
Create Date: 2026-11-21 08:21:24.386210

On Postgres this needs the pg_trgm extension: CREATE EXTENSION needs CREATE on the database (its
owner has it; pg_trgm is a trusted extension since PostgreSQL 13), unless it is installed already.
Each CREATE INDEX blocks writes to users while it builds: about 1 s per B-tree and 3 to 5 s per
trigram index at 1,000,000 users.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "2b20d5b48041"
down_revision = "df91b09e9b64"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_users_is_active_created_at_id"), ["is_active", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_users_role_created_at_id"), ["role", "created_at", "id"], unique=False)

    # SQLite has no GIN: there the substring filters scan, and the models mark these as Postgres-only.
    if op.get_context().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            op.f("ix_users_email_trgm"),
            "users",
            ["email"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        )
        op.create_index(
            op.f("ix_users_display_name_trgm"),
            "users",
            ["display_name"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"display_name": "gin_trgm_ops"},
        )


def downgrade():
    # The extension stays: other objects may use it, and it costs nothing unused.
    if op.get_context().dialect.name == "postgresql":
        op.drop_index(op.f("ix_users_display_name_trgm"), table_name="users")
        op.drop_index(op.f("ix_users_email_trgm"), table_name="users")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_role_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_users_is_active_created_at_id"))
