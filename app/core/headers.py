"""Security headers on every response the app makes, errors included."""

from flask import Flask, Response, request

# A JSON API is never a document: nothing may load, frame or run from its responses.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The Swagger UI page runs only our own files; restx's template carries inline <style> and the
# UI draws data: images, which is all that is let in beyond 'self'.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def secure(response: Response) -> Response:
    """Add the headers; a handler that set one on purpose keeps its own."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", DOCS_CSP if response.mimetype == "text/html" else API_CSP)
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")  # tokens and personal data must not be cached
    if request.is_secure:  # behind a TLS proxy this follows X-Forwarded-Proto (PROXY_HOPS)
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    app.after_request(secure)
