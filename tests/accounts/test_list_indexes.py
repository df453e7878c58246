"""On Postgres the users list filters use their indexes, at a size where the planner would scan without them."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text

from app.core.extensions import db
from tests.support.app import Account, make_user

# Query plans are Postgres's: SQLite, the embedded dev default, may scan.
pytestmark = pytest.mark.parametrize("database_app", ["postgres"], indirect=True)

USERS = "/api/v1/users"
ROWS = 20_000


@pytest.fixture
def many_users(app: Flask) -> None:
    """ROWS users like the bench's (2% inactive, no admins) and one Ada Lovelace, with fresh planner statistics."""
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO users (id, email, display_name, password_hash, role, is_active, created_at, updated_at) "
                "SELECT gen_random_uuid(), 'user' || n || '@example.com', 'User ' || n, 'x', 'user', n % 50 <> 0, "
                "now() - n * interval '1 second', now() FROM generate_series(1, :rows) AS n"
            ),
            {"rows": ROWS},
        )
        db.session.commit()
    make_user(app, email="ada.lovelace@example.org", display_name="Ada Lovelace")
    with app.app_context():
        db.session.execute(text("ANALYZE users"))
        db.session.commit()


def sent_statements(app: Flask, client: FlaskClient, admin: Account, query: str) -> list[tuple[str, Any]]:
    """The statements and parameters that GET /users?query sends to the database."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    with app.app_context():
        engine = db.engines["reads"]  # where a GET request's queries go (extensions.RequestSession)
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(f"{USERS}?{query}", headers=admin.headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.get_json()
    return sent


def list_plan(app: Flask, client: FlaskClient, admin: Account, query: str) -> str:
    """The plan Postgres picks for the page query of GET /users?query."""
    sent = sent_statements(app, client, admin, query)
    pages = [(s, p) for s, p in sent if "FROM users" in s and "ORDER BY" in s]
    assert len(pages) == 1, sent
    statement, parameters = pages[0]
    with app.app_context(), db.engine.connect() as connection:
        return "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters))


# The page query of GET /users?query, and the index its plan must use.
CASES = {
    "role=admin": "ix_users_role_created_at_id",
    "role=admin&sort=email&order=desc": "ix_users_role_created_at_id",
    "is_active=false&order=desc": "ix_users_is_active_created_at_id",
    "email=lovelace": "ix_users_email_trgm",
    "email=lovelace&sort=email&order=desc": "ix_users_email_trgm",
    "name=LOVELACE&order=desc": "ix_users_display_name_trgm",
}


def test_list_filters_use_their_indexes(app: Flask, client: FlaskClient, admin: Account, many_users: None) -> None:
    plans = {query: list_plan(app, client, admin, query) for query in CASES}
    wrong = {query: plan for query, plan in plans.items() if CASES[query] not in plan or "Seq Scan" in plan}
    assert not wrong, "\n\n".join(f"{query}:\n{plan}" for query, plan in wrong.items())


def test_the_default_list_counts_nothing(app: Flask, client: FlaskClient, admin: Account) -> None:
    statements = [s.lower() for s, _ in sent_statements(app, client, admin, "")]
    assert not [s for s in statements if "count(" in s], statements
