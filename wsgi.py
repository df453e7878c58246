"""The WSGI entry point: `gunicorn wsgi:app`; `flask` finds it too."""

from dotenv import load_dotenv

load_dotenv()  # local .env for gunicorn; the flask CLI loads it by itself

from app import create_app  # noqa: E402

app = create_app()
