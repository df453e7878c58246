"""Every error, from any layer, is problem+json with the right status."""

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app import create_app
from app.accounts.models import User
from app.core.extensions import db
from app.toolkit.markers import public
from tests.support.app import PASSWORD, Account, assert_problem, settings

REGISTER = "/api/v1/auth/register"


def test_unknown_url_is_a_problem_404(client: FlaskClient) -> None:
    assert_problem(client.get("/no/such/page"), 404, "not_found")
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/api/v1/auth/login", json={})
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("body", ['{"email": ', "nul\x00", "[1, 2,]", '{"a": NaN'])
def test_malformed_json_is_400(client: FlaskClient, body: str) -> None:
    assert_problem(client.post(REGISTER, data=body, content_type="application/json"), 400, "bad_request")


def test_deeply_nested_json_is_400_not_500(client: FlaskClient) -> None:
    assert_problem(client.post(REGISTER, data="[" * 100_000, content_type="application/json"), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_body_is_415(client: FlaskClient, content_type: str | None) -> None:
    assert_problem(client.post(REGISTER, data="email=a", content_type=content_type), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    body = '{"email": "' + "a" * (1024 * 1024) + '"}'
    assert_problem(client.post(REGISTER, data=body, content_type="application/json"), 413)


@pytest.mark.parametrize("payload", ["null", "[]", '"text"', "42"])
def test_a_body_that_is_not_an_object_is_422(client: FlaskClient, payload: str) -> None:
    assert_problem(client.post(REGISTER, data=payload, content_type="application/json"), 422, "validation_failed")


def test_validation_errors_name_each_field(client: FlaskClient) -> None:
    body = assert_problem(client.post(REGISTER, json={"email": "x"}), 422, "validation_failed")
    assert set(body["errors"]) == {"email", "password", "display_name"}
    assert all(isinstance(m, list) and m for m in body["errors"].values())


def test_nul_bytes_in_text_are_422_on_every_database(client: FlaskClient) -> None:
    body = {"email": "n@example.com", "password": PASSWORD + "\x00", "display_name": "N\x00"}
    errors = assert_problem(client.post(REGISTER, json=body), 422)["errors"]
    assert set(errors) == {"password", "display_name"}


def test_a_sane_request_id_is_echoed_and_an_unsafe_one_replaced(client: FlaskClient) -> None:
    response = client.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert response.get_json()["request_id"] == "abc-123" == response.headers["X-Request-ID"]
    for unsafe in ("<script>", "x" * 200, "a b"):
        response = client.get("/nope", headers={"X-Request-ID": unsafe})
        assert len(response.headers["X-Request-ID"]) == 32 and response.headers["X-Request-ID"].isalnum()
    assert client.get("/api/v1/health/live").headers["X-Request-ID"]


@pytest.fixture(params=[True, False], ids=["testing", "not-testing"])
def crashing_app(request: pytest.FixtureRequest, database_app: Flask) -> Iterator[Flask]:
    app = create_app(settings(TESTING=request.param, DATABASE_URL=database_app.config["DATABASE_URL"]))

    @app.get("/boom")
    @public
    def boom() -> str:
        raise RuntimeError("secret internals")

    yield app


def test_a_get_that_writes_is_refused_and_writes_nothing(crashing_app: Flask) -> None:
    # GET and HEAD requests read in autocommit (extensions.RequestSession), where a write would
    # commit statement by statement; the session refuses it instead, and the same handler behind
    # POST commits as one transaction.
    email = f"scribble-{uuid.uuid4().hex[:8]}@example.com"

    def scribble() -> tuple[str, int]:
        db.session.add(User(email=email, display_name="Scribble", password_hash="x"))
        db.session.commit()
        return "", 201

    crashing_app.add_url_rule("/scribble", view_func=public(scribble), methods=["GET", "POST"])
    client = crashing_app.test_client()
    assert_problem(client.get("/scribble"), 500, "internal_error")
    with crashing_app.app_context():
        assert db.session.scalar(select(User).where(User.email == email)) is None
    assert client.post("/scribble").status_code == 201
    with crashing_app.app_context():
        assert db.session.scalar(select(User).where(User.email == email)) is not None


def test_an_unhandled_error_is_a_problem_500_without_internals(
    crashing_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    response = crashing_app.test_client().get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text and body["request_id"] in caplog.text


def test_a_faulty_query_is_logged_with_its_statement_but_not_its_values(
    crashing_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement the driver refuses (here a value of a type no column has) is a bug to fix from the
    log; the values it carried, such as what a caller sent, stay out of it."""

    @crashing_app.get("/faulty")
    @public
    def faulty() -> str:
        db.session.execute(text("SELECT :shape, :sent"), {"shape": {"not": "bindable"}, "sent": request.args["q"]})
        return ""

    assert_problem(crashing_app.test_client().get("/faulty?q=secret-value"), 500, "internal_error")
    assert "SELECT ?, ?" in caplog.text or "SELECT %(shape)s, %(sent)s" in caplog.text
    assert "secret-value" not in caplog.text


def test_an_unhandled_error_in_a_resource_is_a_problem_500(
    client: FlaskClient, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.accounts import schemas

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(schemas.UserSchema, "dump", explode)
    assert_problem(client.get("/api/v1/users/me", headers=user.headers), 500, "internal_error")
    assert client.get(f"/api/v1/users/{uuid.uuid4()}", headers=user.headers).status_code == 404  # app still fine


def test_an_unhandled_error_is_a_problem_500_outside_testing_mode_too(
    database_app: Flask, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without TESTING, Flask would hand an unhandled error to the server (an HTML 500) unless a
    handler answers it: the app's handlers answer every error, so no PROPAGATE_EXCEPTIONS is needed."""
    from app.accounts import schemas

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    production_like = create_app(settings(TESTING=False, DATABASE_URL=database_app.config["DATABASE_URL"]))
    monkeypatch.setattr(schemas.UserSchema, "dump", explode)
    client = production_like.test_client()
    assert_problem(client.get("/api/v1/users/me", headers=user.headers), 500, "internal_error")
    assert_problem(client.get("/api/v1/users/me"), 401, "missing_token")
