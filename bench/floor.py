"""The floor: a bare Flask app returning a small JSON dict, served like the real app."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> dict[str, str]:
    return {"status": "ok", "service": "floor"}
