"""A migrated test app served over real HTTP on a free loopback port, for browser and client tests."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from app import create_app
from app.core.cli import init_migrations
from app.core.extensions import db
from tests.support.app import settings


@contextmanager
def migrated_app(database_url: str, **overrides: Any) -> Iterator[Flask]:
    """A test app on a freshly migrated database, emptied and disconnected afterwards."""
    app = create_app(settings(DATABASE_URL=database_url, **overrides))
    init_migrations(app)
    with app.app_context():
        upgrade()
    try:
        yield app
    finally:
        with app.app_context():
            # With TEST_DATABASE_URL every app shares one database; leave it as the next test expects.
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
            db.engine.dispose()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve the app with werkzeug's threaded server on 127.0.0.1:<free port>; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
