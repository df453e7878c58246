"""Password rules (NIST SP 800-63B): a length range and blocklists, no composition rules."""

import hashlib
import logging
import mmap
import re
import sys
import urllib.request
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from flask import current_app, g

PASSWORD_MAX_LENGTH = 1024  # bounds the hashing cost of a single request
# Breached passwords, as fingerprints: scripts/build-password-list makes it, docs/security.md says from what.
BLOCKLIST = Path(__file__).parent / "data" / "breached-passwords.bin"
RANGE_ANSWER_LIMIT = 1 << 20  # a padded answer of the range API is about 40 KB

log = logging.getLogger("app.security")


def fingerprint(password: str) -> int:
    """The first 8 bytes of the password's SHA-256: with half a million entries, a chance collision
    refuses one password in some 10**13."""
    return int.from_bytes(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()[:8], "little")


def pack(fingerprints: Iterable[int]) -> bytes:
    """The blocklist file's bytes: the fingerprints sorted, 8 little-endian bytes each."""
    return b"".join(value.to_bytes(8, "little") for value in sorted(set(fingerprints)))


@cache
def blocklist() -> Sequence[int]:
    """The sorted fingerprints, mapped from the file: nothing is parsed at start-up, and gunicorn's
    workers share the pages instead of each holding a copy."""
    with BLOCKLIST.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if sys.byteorder == "little":
        return memoryview(mapped).cast("Q")
    swapped = array("Q", mapped)
    swapped.byteswap()
    return swapped


def listed(text: str) -> bool:
    """Whether the text (lower-cased) is on the bundled list of breached passwords."""
    wanted, table = fingerprint(text), blocklist()
    at = bisect_left(table, wanted)
    return at < len(table) and table[at] == wanted


def breached(password: str) -> bool:
    """Whether the breach service at PWNED_PASSWORDS_URL has seen the password (Have I Been Pwned's
    range API: only the first 5 hex digits of its SHA-1 leave the process). Fails open: when the
    service cannot answer, the bundled list has already been checked and a sign-up or reset must
    not depend on a third party being up."""
    url = current_app.config["PWNED_PASSWORDS_URL"]
    if not url:
        return False
    digest = hashlib.sha1(password.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest().upper()
    asked: dict[str, bool] = g.setdefault("breach_answers", {})  # a request checks a password more than once
    if digest not in asked:
        asked[digest] = _range_lists(url, digest[:5], digest[5:])
    return asked[digest]


def _range_lists(url: str, prefix: str, suffix: str) -> bool:
    """Ask the range API for the suffixes under the prefix; whether the suffix is among them."""
    # An http(s) URL: config.check refuses any other (CFG007).
    headers = {"Add-Padding": "true", "User-Agent": current_app.config["APP_NAME"]}
    request = urllib.request.Request(f"{url.rstrip('/')}/{prefix}", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=current_app.config["PWNED_PASSWORDS_TIMEOUT"]) as answer:  # noqa: S310  # nosec B310
            text = answer.read(RANGE_ANSWER_LIMIT).decode("ascii", "replace")
    except (OSError, ValueError) as e:  # refused, timed out, an HTTP error status, a bad URL
        log.warning("breach_check.unavailable", extra={"cause": type(e).__name__})
        return False
    for line in text.splitlines():
        found, _, count = line.partition(":")
        if found.strip().upper() == suffix and count.strip().isdigit() and int(count) > 0:  # 0: padding
            return True
    return False


def _letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def password_problem(password: str, email: str | None = None) -> str | None:
    """Why a new password is refused, or None."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if not minimum <= len(password) <= PASSWORD_MAX_LENGTH:
        return f"Length must be between {minimum} and {PASSWORD_MAX_LENGTH}."
    if listed(password.lower()) or listed(_letters(password)):
        return "This password is too common; choose another (a few unrelated words work well)."
    if re.fullmatch(r"(.+?)\1+", password, re.DOTALL) or re.fullmatch(r"(.+?)\1+", _letters(password)):
        return "This password is one pattern repeated; choose another."
    if _letters(current_app.config["APP_NAME"]) in _letters(password):
        return "The password must not contain the name of this service."
    local_part = _letters(email.partition("@")[0]) if email else ""
    if len(local_part) >= 3 and local_part in _letters(password):
        return "The password must not contain your email address."
    if breached(password):
        return "This password has appeared in a data breach; choose another."
    return None
