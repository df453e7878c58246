"""Liveness and readiness."""

from collections.abc import Callable

from flask.testing import FlaskClient

from app import create_app
from tests.conftest import assert_problem, settings
from tests.postgres import free_port


def test_live_and_ready_when_migrated(client: FlaskClient) -> None:
    assert client.get("/api/v1/health/live").get_json() == {"status": "ok"}
    assert client.get("/api/v1/health/ready").get_json() == {"status": "ready"}


def test_not_ready_before_migrations(new_database: Callable[[str], str]) -> None:
    client = create_app(settings(DATABASE_URL=new_database("sqlite"))).test_client()
    response = client.get("/api/v1/health/ready")
    assert_problem(response, 503, "schema_not_current")
    assert response.headers["Retry-After"]


def test_not_ready_without_a_database_but_still_live() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    client = create_app(settings(DATABASE_URL=url)).test_client()
    assert client.get("/api/v1/health/live").status_code == 200
    assert_problem(client.get("/api/v1/health/ready"), 503, "database_unavailable")
