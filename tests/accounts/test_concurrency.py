"""Racing writers: the database constraint decides, and losers get a clean 409."""

import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from sqlalchemy import func, select

from app.accounts.models import User
from app.core.extensions import db
from tests.support.app import PASSWORD


def test_concurrent_duplicate_registrations_give_one_201_and_409s(app: Flask) -> None:
    variants = ["race@example.com", "RACE@example.com", "race@EXAMPLE.COM", " Race@Example.Com"]
    barrier = threading.Barrier(20)

    def register(i: int) -> tuple[int, str]:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/auth/register", json={"email": variants[i % 4], "password": PASSWORD, "display_name": f"R{i}"}
        )
        return response.status_code, response.mimetype

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(register, range(20)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19, results
    assert all(mimetype == "application/problem+json" for status, mimetype in results if status == 409)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
