"""Login sessions: list and revoke your own (admins: anyone's), or end them all at once."""

import uuid
from typing import Any

from flask import Response, current_app
from flask_jwt_extended import unset_jwt_cookies
from flask_restx import Resource
from sqlalchemy import Select, select

from app import auth, users
from app.audit import record
from app.errors import ApiError
from app.extensions import db
from app.identity import current_user, token_claims
from app.models import RefreshSession, User, end_sessions, utcnow
from app.openapi import model, problems
from app.schemas import SessionListSchema, SessionSchema
from app.users import no_content, visible_user

ns = users.ns
SESSIONS_SCHEMA = SessionSchema(many=True, exclude=["current"])  # built once, as users.py says why
session_list = model(SessionListSchema)


def live(user: User) -> Select[RefreshSession]:
    """The user's sessions that still work."""
    return select(RefreshSession).where(
        RefreshSession.user_id == user.id, RefreshSession.revoked_at.is_(None), RefreshSession.expires_at > utcnow()
    )


def live_sessions(user: User) -> dict[str, Any]:
    """The user's live sessions, most recently used first; the caller's own is marked."""
    sessions = db.session.scalars(live(user).order_by(RefreshSession.last_used_at.desc(), RefreshSession.id))
    items = SESSIONS_SCHEMA.dump(sessions)
    own = token_claims()["sid"]
    for item in items:
        item["current"] = item["id"] == own
    return {"items": items}


def revoke(user: User, session_id: uuid.UUID) -> Response:
    """End one live session of the user; 404 if there is none with this id."""
    session = db.session.scalar(live(user).where(RefreshSession.id == session_id))
    if session is None:
        raise ApiError(404, "not_found", "No live session with this id.")
    end_sessions(RefreshSession.id == session.id)
    record("session.revoked", current_user.id, user.id, session_id=str(session.id))
    db.session.commit()
    return no_content()


@ns.route("/me/sessions")
class MySessions(Resource):
    @ns.response(200, "Your live sessions", session_list)
    @problems(401)
    def get(self) -> dict[str, Any]:
        """List your live login sessions."""
        return live_sessions(current_user)


@ns.route("/me/sessions/<uuid:session_id>")
@ns.param("session_id", "The session's id (a UUID)")
class MySession(Resource):
    @ns.response(204, "Session ended: its tokens stop working")
    @problems(401, 404)
    def delete(self, session_id: uuid.UUID) -> Response:
        """End one of your sessions."""
        return revoke(current_user, session_id)


@ns.route("/<uuid:user_id>/sessions")
@ns.param("user_id", "The user's id (a UUID)")
class UserSessions(Resource):
    @ns.response(200, "The user's live sessions", session_list)
    @problems(401, 404)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """List a user's live login sessions (admin, or yourself)."""
        return live_sessions(visible_user(user_id))


@ns.route("/<uuid:user_id>/sessions/<uuid:session_id>")
@ns.param("user_id", "The user's id (a UUID)")
@ns.param("session_id", "The session's id (a UUID)")
class UserSession(Resource):
    @ns.response(204, "Session ended: its tokens stop working")
    @problems(401, 404)
    def delete(self, user_id: uuid.UUID, session_id: uuid.UUID) -> Response:
        """End one of a user's sessions (admin, or yourself)."""
        return revoke(visible_user(user_id), session_id)


@auth.ns.route("/logout-all")
class LogoutAll(Resource):
    @auth.ns.response(204, "Every session of yours has ended, this one too")
    @problems(401)
    def post(self) -> Response:
        """End every session of yours, on every device."""
        end_sessions(RefreshSession.user_id == current_user.id)
        record("sessions.revoked_all", current_user.id, current_user.id)
        db.session.commit()
        response = no_content()
        if current_app.config["AUTH_COOKIES"]:
            unset_jwt_cookies(response)
        return response
