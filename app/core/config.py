"""Settings from the environment, and the production start-up guard."""

import logging
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from app.core.proxy import origin_problem, proxy_networks

log = logging.getLogger(__name__)

PLACEHOLDER = "changeme"  # the marker .env.example puts in every secret, in letters only
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 128
MAIL_BACKENDS = ("console", "smtp", "memory")


class ConfigError(RuntimeError):
    """The settings are unsafe or invalid; the app refuses to start."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Setting(NamedTuple):
    default: str
    parse: Callable[[str], Any]
    help: str


# The one list of settings: .env.example and docs/configuration.md are checked against it.
SETTINGS: dict[str, Setting] = {
    "APP_NAME": Setting("Flask API starter", str, "the service's name: Swagger title; passwords may not contain it"),
    "APP_ENV": Setting("development", str, "development or production; production turns on the start-up guard"),
    "SECRET_KEY": Setting("", str, "Flask secret, >= 32 random bytes; required in production"),
    "JWT_SECRET_KEY": Setting("", str, "HS256 signing key for tokens, >= 32 random bytes; required in production"),
    "DATABASE_URL": Setting(
        "sqlite:///app.db", str, "SQLAlchemy URL; relative SQLite paths live in instance/; postgres:// uses psycopg2"
    ),
    "JWT_ISSUER": Setting("flask-api-starter", str, "iss claim written into and required of every token"),
    "JWT_AUDIENCE": Setting("flask-api-starter", str, "aud claim written into and required of every token"),
    "AUTH_COOKIES": Setting(
        "false",
        _bool,
        "also deliver tokens as Secure HttpOnly SameSite=Strict cookies with CSRF double submit, for browser apps",
    ),
    "JWT_ACCESS_TOKEN_MINUTES": Setting("15", int, "lifetime of an access token"),
    "JWT_REFRESH_TOKEN_DAYS": Setting("14", int, "absolute lifetime of a login session; refreshing never extends it"),
    "SESSION_IDLE_MINUTES": Setting(
        "10080", int, "a login session whose refresh token goes unused this long ends (default 7 days)"
    ),
    "REFRESH_GRACE_SECONDS": Setting(
        "10",
        int,
        "for this long after a refresh, the token it rotated still gets a pair of the same session (two tabs, a "
        "retry); a replay after it ends the session",
    ),
    "PASSWORD_MIN_LENGTH": Setting(
        "15", int, "minimum password length in characters (NIST SP 800-63B); the maximum is 1024"
    ),
    "PWNED_PASSWORDS_URL": Setting(
        "",
        str,
        "also refuse new passwords this breach service has seen (Have I Been Pwned's range API: "
        "https://api.pwnedpasswords.com/range/; only 5 hex digits of a SHA-1 leave); empty: only the bundled list",
    ),
    "PWNED_PASSWORDS_TIMEOUT": Setting(
        "2", float, "seconds to wait for that service; when it cannot answer, the password is accepted (fails open)"
    ),
    "REGISTRATION_ENUMERATION_SAFE": Setting(
        "false",
        _bool,
        "registration answers 202 whatever the address, mailing a taken address's owner instead of a 409; an "
        "email change to a taken address looks accepted and that address's owner gets a notice",
    ),
    "CORS_ORIGINS": Setting(
        "", _list, "comma-separated origins allowed to call /api/ from a browser; empty means none"
    ),
    "DOCS_ENABLED": Setting(
        "true", _bool, "serve Swagger UI at /swagger and the OpenAPI documents at /api/v1/openapi.json and swagger.json"
    ),
    "DOCS_PERSIST_AUTH": Setting(
        "false", _bool, "Swagger UI keeps its tokens in localStorage, across reloads (else only in the page's memory)"
    ),
    "MAX_CONTENT_LENGTH": Setting("1048576", int, "largest request body in bytes; larger bodies get 413"),
    "PUBLIC_URL": Setting(
        "",
        str,
        "origin clients call, e.g. https://api.example.com: every link and redirect the app builds starts with it, "
        "whatever Host a request names; required in production; empty (development): the request's own host",
    ),
    "PROXY_HOPS": Setting(
        "0", int, "reverse proxies in front of the app whose X-Forwarded-For and -Proto to trust (nginx: 1)"
    ),
    "FORWARDED_ALLOW_IPS": Setting(
        "127.0.0.1,::1",
        str,
        "addresses or networks (CIDR) of those proxies: their forwarded headers count, anyone else's are "
        "ignored; gunicorn reads it too; * trusts every peer, which production refuses with PROXY_HOPS",
    ),
    "REQUIRE_IF_MATCH": Setting(
        "false", _bool, "PATCH /users/... without If-Match gets 428 instead of applying blindly"
    ),
    "RATELIMIT_STORAGE_URI": Setting(
        "memory://", str, "where rate-limit counters live: memory:// (one process) or redis://host:6379/0"
    ),
    "RATELIMIT_PER_CALLER": Setting(
        "600 per minute", str, "general quota per user (per IP when anonymous) on every endpoint"
    ),
    "QUOTA_BATCH": Setting(
        "10",
        int,
        "requests of a caller each worker counts before adding them to Redis (at least once a second); the "
        "quota may let through workers x this many more than RATELIMIT_PER_CALLER",
    ),
    "RATELIMIT_LOGIN_ACCOUNT": Setting(
        "10 per 15 minutes",
        str,
        "failed logins per email from clients without a device token, from any IP; the next such attempt gets 429 "
        "before any hashing (a client that logged in before is capped by RATELIMIT_LOGIN_DEVICE instead)",
    ),
    "RATELIMIT_LOGIN_DEVICE": Setting(
        "10 per 15 minutes", str, "failed logins per device token (a client that logged in to the account before)"
    ),
    "RATELIMIT_LOGIN_IP": Setting("30 per minute", str, "login attempts per client IP"),
    "RATELIMIT_REGISTER_IP": Setting("5 per hour", str, "registrations per client IP"),
    "RATELIMIT_REFRESH_IP": Setting("20 per minute", str, "token refreshes per client IP"),
    "RATELIMIT_PASSWORD_IP": Setting("10 per hour", str, "password changes per client IP"),
    "RATELIMIT_PASSWORD_ACCOUNT": Setting(
        "5 per 15 minutes",
        str,
        "wrong current passwords per account, from any IP (password and email changes); the next check gets "
        "429 before any hashing",
    ),
    "RATELIMIT_MFA_ACCOUNT": Setting(
        "5 per 15 minutes;20 per day",
        str,
        "wrong MFA codes per account, from any IP, over every challenge and sensitive change; the next code gets "
        "429 (a challenge also dies after 5 wrong codes)",
    ),
    "RATELIMIT_PASSWORD_RESET_IP": Setting("10 per hour", str, "password-reset requests per client IP"),
    "RATELIMIT_PASSWORD_RESET_EMAIL": Setting(
        "3 per hour", str, "password-reset requests per email address, whether or not it has an account"
    ),
    "RATELIMIT_VERIFY_RESEND": Setting("3 per hour", str, "verification mails a user can ask to be sent again"),
    "MAIL_BACKEND": Setting(
        "console",
        str.lower,
        "console (write mail to the app log), smtp (queue it in the outbox for `flask mail send-outbox`) or "
        "memory (keep it, for tests); console and memory deliver in the web process right after the commit",
    ),
    "MAIL_FROM": Setting("no-reply@localhost", str, "sender address of every mail"),
    "MAIL_HOST": Setting("localhost", str, "SMTP server host (MAIL_BACKEND=smtp)"),
    "MAIL_PORT": Setting("25", int, "SMTP server port (Mailpit: 1025; submission with STARTTLS: 587)"),
    "MAIL_USE_TLS": Setting("false", _bool, "upgrade the SMTP connection with STARTTLS, verifying the certificate"),
    "MAIL_USERNAME": Setting("", str, "SMTP login; empty sends without logging in"),
    "MAIL_PASSWORD": Setting("", str, "SMTP password"),
    "MAIL_TIMEOUT": Setting("10", float, "seconds to wait for the SMTP server"),
    "MAIL_SEND_ATTEMPTS": Setting("8", int, "outbox sender: attempts at a mail before it is marked failed"),
    "MAIL_RETRY_SECONDS": Setting("30", float, "outbox sender: wait after a mail's first failure; doubles each time"),
    "MAIL_RETRY_MAX_SECONDS": Setting("3600", float, "outbox sender: the longest wait between two attempts"),
    "MAIL_POLL_SECONDS": Setting("2", float, "outbox sender: how often it looks for new mail when it has none"),
    "FRONTEND_URL": Setting(
        "",
        str,
        "web app that mails link to ({FRONTEND_URL}/reset-password#token=...); empty: mails carry the bare token",
    ),
    "PASSWORD_RESET_MINUTES": Setting("30", int, "how long a password-reset token works"),
    "EMAIL_VERIFICATION_HOURS": Setting("48", int, "how long an email-verification token works"),
    "REQUIRE_VERIFIED_EMAIL": Setting(
        "false", _bool, "login answers 403 email_not_verified until the account's email is verified"
    ),
    "MFA_CHALLENGE_MINUTES": Setting(
        "5", int, "how long the mfa_token of a login's first step works for the second step (POST /auth/login/mfa)"
    ),
    "LOG_LEVEL": Setting("INFO", str.upper, "DEBUG, INFO, WARNING or ERROR"),
    "LOG_FORMAT": Setting(
        "", str.lower, "json (one object a line) or text; empty: json when APP_ENV=production, else text"
    ),
    "DB_CONNECT_TIMEOUT": Setting(
        "3",
        int,
        "Postgres: seconds to wait for a new connection (readiness answers within it); a statement's answer "
        "is awaited at most DB_STATEMENT_TIMEOUT plus this long, even from a server that hangs",
    ),
    "DB_IDLE_TIMEOUT": Setting(
        "60",
        int,
        "Postgres 14+: seconds a pooled connection may sit idle before the server closes it (so a smart "
        "shutdown completes); the pool replaces connections older than half of it; 0: never",
    ),
    "DB_STATEMENT_TIMEOUT": Setting(
        "10", float, "Postgres: seconds a statement may run before it is cancelled (503); keep below GUNICORN_TIMEOUT"
    ),
    "DB_LOCK_TIMEOUT": Setting("3", float, "Postgres: seconds a statement may wait for a row or table lock (503)"),
    "DB_POOL_SIZE": Setting("5", int, "Postgres: connections each worker keeps open"),
    "DB_MAX_OVERFLOW": Setting("10", int, "Postgres: extra connections a worker may open when its pool is in use"),
    "DB_POOL_TIMEOUT": Setting("5", float, "Postgres: seconds to wait for a free pooled connection (503)"),
    "REQUEST_QUEUE_TIMEOUT": Setting(
        "3",
        float,
        "seconds a request may wait for a free worker; one that waited longer gets 503 overloaded at once (0: off)",
    ),
    "REDIS_TIMEOUT": Setting("1", float, "seconds to wait for Redis (rate-limit counters, readiness)"),
    "HASH_CONCURRENCY": Setting(
        "0",
        int,
        "password hashes (about 20 ms of CPU each) one instance runs at once; more wait HASH_WAIT_MS, then 503 "
        "hashing_busy; "
        "0: WEB_CONCURRENCY - 1, at least 1, so a login flood always leaves a worker free",
    ),
    "HASH_WAIT_MS": Setting(
        "0",
        int,
        "milliseconds a request waits for a free hashing slot before 503 hashing_busy; 0: twice the time the "
        "worker's last hash took (at least 0.1 s), so logins arriving together take turns; in a flood (slots "
        "contended for about ten of these waits without a break of one) the 503 comes at once",
    ),
    "HASH_SLOTS_DIR": Setting(
        "",
        str,
        "folder whose lock files the workers of one instance share for HASH_CONCURRENCY; gunicorn.conf.py "
        "makes a fresh one when empty",
    ),
    "FLASK_DEBUG": Setting("false", _bool, "Flask debug mode; never in production"),
}


def database_url(url: str) -> str:
    """Pin Postgres URLs to psycopg2: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def engine_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Bound every wait on Postgres, so a database that is down, slow or saturated costs a request
    a few seconds and a 503 instead of holding a worker until gunicorn kills it."""
    # A failed statement's error names the statement, never the values it carried (emails, whatever
    # a caller sent): the log keeps what a bug fix needs and no more.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if database_url(cfg["DATABASE_URL"]).startswith("postgresql"):
        from app.core.database import deadline_connection  # here: SQLite-only settings need no psycopg2

        statement_ms, lock_ms = int(cfg["DB_STATEMENT_TIMEOUT"] * 1000), int(cfg["DB_LOCK_TIMEOUT"] * 1000)
        # The server cancels a statement at statement_timeout; an answer later than that plus a connect
        # timeout's slack means the server or the network hangs.
        wait_seconds = cfg["DB_STATEMENT_TIMEOUT"] + cfg["DB_CONNECT_TIMEOUT"]
        server_options = f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}"
        if cfg["DB_IDLE_TIMEOUT"]:
            server_options += f" -c idle_session_timeout={cfg['DB_IDLE_TIMEOUT'] * 1000}"
            # Younger than half the idle timeout, a pooled connection cannot have been closed by the server.
            options["pool_recycle"] = cfg["DB_IDLE_TIMEOUT"] / 2
        options.update(
            pool_size=cfg["DB_POOL_SIZE"],
            max_overflow=cfg["DB_MAX_OVERFLOW"],
            pool_timeout=cfg["DB_POOL_TIMEOUT"],
            connect_args={
                "connect_timeout": cfg["DB_CONNECT_TIMEOUT"],
                "options": server_options,
                "connection_factory": deadline_connection(cfg["DB_CONNECT_TIMEOUT"], wait_seconds),
                # A host that vanished: idle pooled connections find out from keepalives within ~16 s,
                # a connection with a statement unacknowledged from the kernel within the wait bound.
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": int(wait_seconds * 1000),
            },
        )
    return options


def redis_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Socket timeouts for Redis: without them a vanished host would hang every rate-limited request."""
    if not str(cfg["RATELIMIT_STORAGE_URI"]).startswith(("redis://", "rediss://")):
        return {}
    return {"socket_connect_timeout": cfg["REDIS_TIMEOUT"], "socket_timeout": cfg["REDIS_TIMEOUT"]}


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read every setting from the environment, apply overrides, derive the libraries' keys."""
    cfg: dict[str, Any] = {name: s.parse(os.environ.get(name, s.default)) for name, s in SETTINGS.items()}
    cfg.update(overrides or {})
    cfg.update(
        DEBUG=cfg["FLASK_DEBUG"],
        SQLALCHEMY_DATABASE_URI=database_url(cfg["DATABASE_URL"]),
        LOG_FORMAT=cfg["LOG_FORMAT"] or ("json" if cfg["APP_ENV"] == "production" else "text"),
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(cfg),
        # A second pool, for reads: the caller lookup every authenticated request makes
        # (app/toolkit/identity.py) and the queries of GET requests (extensions.RequestSession). In
        # autocommit they need no BEGIN and ROLLBACK round trips, and no ping at checkout: a
        # connection that died with the server fails once, which empties the pool. The caller
        # lookup retries that once, so a GET's own queries then find fresh connections; a public
        # GET that reads the database would see the failure itself, as one 503 per worker.
        SQLALCHEMY_BINDS={
            "reads": {
                "url": database_url(cfg["DATABASE_URL"]),
                **engine_options(cfg),
                "pool_pre_ping": False,
                "isolation_level": "AUTOCOMMIT",
            }
        },
        RATELIMIT_STORAGE_OPTIONS=redis_options(cfg),
        HASH_SLOTS=cfg["HASH_CONCURRENCY"] or max(1, int(os.environ.get("WEB_CONCURRENCY", "1")) - 1),
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_COOKIE_SECURE=True,
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_SESSION_COOKIE=False,  # each cookie's Max-Age is the session's remaining life (accounts/auth.py)
        # __Host-: the browser takes them only Secure, for Path=/ and with no Domain, so a sibling subdomain
        # or an http page cannot plant or shadow one (CSRF cookie tossing). The prefix demands Path=/.
        JWT_ACCESS_COOKIE_NAME="__Host-access_token",
        JWT_REFRESH_COOKIE_NAME="__Host-refresh_token",
        JWT_ACCESS_CSRF_COOKIE_NAME="__Host-csrf_access",
        JWT_REFRESH_CSRF_COOKIE_NAME="__Host-csrf_refresh",
        JWT_ACCESS_COOKIE_PATH="/",
        JWT_REFRESH_COOKIE_PATH="/",
        JWT_ACCESS_CSRF_COOKIE_PATH="/",
        JWT_REFRESH_CSRF_COOKIE_PATH="/",
        JWT_COOKIE_DOMAIN=None,
        JWT_ENCODE_ISSUER=cfg["JWT_ISSUER"],
        JWT_DECODE_ISSUER=cfg["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=cfg["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=cfg["JWT_AUDIENCE"],
        JWT_DECODE_LEEWAY=0,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=cfg["JWT_ACCESS_TOKEN_MINUTES"]),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=cfg["JWT_REFRESH_TOKEN_DAYS"]),
        RESTX_ERROR_404_HELP=False,
        # Nested marshmallow schemas become definitions that restx must emit too.
        RESTX_INCLUDE_ALL_MODELS=True,
        SWAGGER_UI_DOC_EXPANSION="list",
    )
    return cfg


def estimated_bits(value: str) -> float:
    """A rough entropy estimate: each character counts log2(distinct characters) bits, unless the
    three characters from it on appeared before, so a repeated pattern adds nothing. 32 random bytes
    in hex, base64 or base64url score 180 or more."""
    seen = {value[i : i + 3] for i in range(len(value))}
    return math.log2(len(set(value))) * len(seen) if value else 0.0


def secret_problems(name: str, value: str | None) -> list[str]:
    """Say what is wrong with a secret, naming the setting, never the value."""
    if not value:
        return [f"SEC001 {name} is not set"]
    problems = []
    if PLACEHOLDER in re.sub(r"[^a-z]", "", value.lower()):
        problems.append(f"SEC002 {name} is still the placeholder from .env.example")
    if len(value.encode()) < MIN_SECRET_BYTES:
        problems.append(f"SEC003 {name} is shorter than {MIN_SECRET_BYTES} bytes")
    # A generator never writes whitespace, and mixes letters of both cases or letters and digits:
    # a phrase, or words joined by dashes, is what a person made up.
    kinds = sum(bool(re.search(pattern, value)) for pattern in ("[a-z]", "[A-Z]", "[0-9]"))
    if re.search(r"\s", value) or kinds < 2:
        problems.append(f"SEC004 {name} looks made up (whitespace, or only one of lowercase, uppercase, digits)")
    elif estimated_bits(value) < MIN_SECRET_BITS:
        problems.append(
            f"SEC004 {name} has under {MIN_SECRET_BITS} bits of entropy by estimate (repeats, few characters)"
        )
    return problems


def check(cfg: dict[str, Any]) -> None:
    """Refuse unsafe production settings; give development a throwaway key when none is set."""
    if cfg["APP_ENV"] not in {"development", "production"}:
        raise ConfigError("CFG001 APP_ENV must be 'development' or 'production'")
    if cfg["MAIL_BACKEND"] not in MAIL_BACKENDS:
        raise ConfigError(f"CFG002 MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}")
    if cfg["LOG_FORMAT"] not in ("json", "text"):
        raise ConfigError("CFG003 LOG_FORMAT must be 'json' or 'text'")
    if cfg["HASH_CONCURRENCY"] < 0:
        raise ConfigError("CFG004 HASH_CONCURRENCY must be 0 (automatic) or more")
    if cfg["PUBLIC_URL"] and (why := origin_problem(cfg["PUBLIC_URL"])):
        raise ConfigError(f"CFG005 PUBLIC_URL is not an origin like https://api.example.com: {why}")
    if cfg["PWNED_PASSWORDS_URL"] and not re.match(r"https?://[^/]", cfg["PWNED_PASSWORDS_URL"]):
        raise ConfigError(
            "CFG007 PWNED_PASSWORDS_URL must be an http(s) URL, like https://api.pwnedpasswords.com/range/"
        )
    try:
        proxies = proxy_networks(cfg["FORWARDED_ALLOW_IPS"])
    except ValueError:
        raise ConfigError("CFG006 FORWARDED_ALLOW_IPS must list IP addresses or networks (CIDR), or be *") from None
    if cfg["APP_ENV"] == "production":
        problems = secret_problems("SECRET_KEY", cfg["SECRET_KEY"])
        problems += secret_problems("JWT_SECRET_KEY", cfg["JWT_SECRET_KEY"])
        if cfg["SECRET_KEY"] and cfg["SECRET_KEY"] == cfg["JWT_SECRET_KEY"]:
            problems.append("SEC007 SECRET_KEY and JWT_SECRET_KEY are the same value; each needs its own")
        if cfg["DEBUG"]:
            problems.append("SEC005 FLASK_DEBUG is on")
        if cfg["RATELIMIT_STORAGE_URI"].startswith("memory://") and os.environ.get("WEB_CONCURRENCY") != "1":
            # Each worker would count on its own, multiplying every limit by the worker count.
            problems.append(
                "SEC006 RATELIMIT_STORAGE_URI keeps counters per process but several workers may run (use Redis)"
            )
        if not cfg["PUBLIC_URL"]:
            # Without it, links and redirects would take their host from the request: a forged Host header.
            problems.append("SEC009 PUBLIC_URL is not set (the origin clients call, e.g. https://api.example.com)")
        if cfg["PROXY_HOPS"] and proxies is None:
            # Any client that reaches the app directly could then name its own IP and escape per-IP limits.
            problems.append("SEC010 FORWARDED_ALLOW_IPS is *: name the proxies whose X-Forwarded-For counts")
        if cfg["MAIL_BACKEND"] == "console":
            problems.append(
                "SEC008 MAIL_BACKEND logs every mail, reset tokens included, instead of sending it (use smtp)"
            )
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
        if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            log.warning("SQLite is the development default; use Postgres in production")
        if cfg["MAIL_BACKEND"] != "smtp":
            log.warning("MAIL_BACKEND=%s sends no mail; use smtp", cfg["MAIL_BACKEND"])
        return
    for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
        if not cfg[name]:
            cfg[name] = secrets.token_urlsafe(48)
            log.warning(
                "%s is not set: using a random key for this process only; tokens will not "
                "survive a restart or work across workers (make run writes a .env with real keys)",
                name,
            )
