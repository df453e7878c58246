"""Account commands: `flask users create-admin` and `flask tokens purge`."""

import secrets

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import delete, or_

from app.accounts.factors import MfaChallenge
from app.accounts.models import AccountToken, RefreshSession, RevokedToken
from app.accounts.schemas import UserCreateSchema
from app.accounts.service import create_user
from app.core.database import utcnow
from app.core.extensions import db

users_cli = AppGroup("users", help="Manage users.")
tokens_cli = AppGroup("tokens", help="Manage tokens and sessions.")


@users_cli.command("create-admin")
@click.option("--email", required=True, help="The admin's email address.")
@click.option("--name", "display_name", default="Admin", show_default=True, help="Display name.")
@click.option("--generate-password", is_flag=True, help="Generate a strong password and print it once.")
def create_admin(email: str, display_name: str, generate_password: bool) -> None:
    """Create an admin account; prompts for the password unless --generate-password."""
    if generate_password:
        password = secrets.token_urlsafe(24)
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    payload = {"email": email, "display_name": display_name, "password": password, "role": "admin"}
    try:
        # The operator vouches for the address; unverified, REQUIRE_VERIFIED_EMAIL would lock the admin out.
        user = create_user({**UserCreateSchema().load(payload), "email_verified_at": utcnow()})
    except ValidationError as e:
        raise click.ClickException(f"invalid input: {e.messages}") from e
    click.echo(f"Created admin {user.email} ({user.id}).")
    if generate_password:
        click.echo(f"Password (shown once): {password}")


@tokens_cli.command("purge")
def purge() -> None:
    """Delete revoked-token rows, sessions, mailed tokens and MFA challenges that have expired or ended."""
    now = utcnow()
    tokens = db.session.scalars(
        delete(RevokedToken).where(RevokedToken.expires_at < now).returning(RevokedToken.jti)
    ).all()
    sessions = db.session.scalars(
        delete(RefreshSession)
        .where(or_(RefreshSession.expires_at < now, RefreshSession.revoked_at.is_not(None)))
        .returning(RefreshSession.id)
    ).all()
    mailed = db.session.scalars(
        delete(AccountToken)
        .where(or_(AccountToken.expires_at < now, AccountToken.used_at.is_not(None)))
        .returning(AccountToken.id)
    ).all()
    challenges = db.session.scalars(
        delete(MfaChallenge)
        .where(or_(MfaChallenge.expires_at < now, MfaChallenge.used_at.is_not(None)))
        .returning(MfaChallenge.id)
    ).all()
    db.session.commit()
    click.echo(
        f"Purged {len(tokens)} revoked tokens and {len(sessions)} ended sessions (and {len(mailed)} mailed tokens, "
        f"{len(challenges)} MFA challenges)."
    )


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
