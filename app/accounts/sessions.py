"""The sessions namespace, under /users: list and end your login sessions (admins: anyone's)."""

import uuid
from typing import Any

from sqlalchemy import Select, select

from app.accounts.models import RefreshSession, User, end_sessions, idle_since
from app.accounts.schemas import SessionListSchema
from app.audit.trail import record
from app.core.database import utcnow
from app.core.extensions import db
from app.toolkit import ApiError, Namespace, Resource, current_user, errors, operation, owned_or_404, response
from app.toolkit.identity import token_claims

ns = Namespace("sessions", description="Login sessions: list them, end one", path="/users")


def live(user_id: uuid.UUID) -> Select[RefreshSession]:
    """The user's sessions that still work."""
    generation = select(User.session_generation).where(User.id == user_id).scalar_subquery()
    return select(RefreshSession).where(
        RefreshSession.user_id == user_id,
        RefreshSession.revoked_at.is_(None),
        RefreshSession.expires_at > utcnow(),
        RefreshSession.last_used_at > idle_since(),
        RefreshSession.generation == generation,
    )


def live_sessions(user_id: uuid.UUID) -> dict[str, Any]:
    """The user's live sessions, most recently used first; the caller's own is marked current."""
    sessions = list(db.session.scalars(live(user_id).order_by(RefreshSession.last_used_at.desc(), RefreshSession.id)))
    own = uuid.UUID(token_claims()["sid"])
    for session in sessions:
        session.current = session.id == own  # type: ignore[attr-defined]
    return {"items": sessions}


def revoke(user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """End one live session of the user; 404 if there is none with this id."""
    session = db.session.scalar(live(user_id).where(RefreshSession.id == session_id))
    if session is None:
        raise ApiError(404, "not_found", "No live session with this id.")
    end_sessions(RefreshSession.id == session.id)
    record("session.revoked", current_user.id, user_id, session_id=str(session.id))
    db.session.commit()


@ns.route("/me/sessions")
class MySessions(Resource):
    @operation("listMySessions")
    @response(SessionListSchema, description="Your live sessions")
    def get(self) -> dict[str, Any]:
        """List your live login sessions."""
        return live_sessions(current_user.id)


@ns.route("/me/sessions/<uuid:session_id>")
@ns.param("session_id", "The session's id (a UUID)")
class MySession(Resource):
    @operation("endMySession")
    @response(None, 204, "Session ended: its tokens stop working")
    @errors(404)
    def delete(self, session_id: uuid.UUID) -> None:
        """End one of your sessions."""
        revoke(current_user.id, session_id)


@ns.route("/<uuid:user_id>/sessions")
@ns.param("user_id", "The user's id (a UUID)")
class UserSessions(Resource):
    @operation("listUserSessions")
    @response(SessionListSchema, description="The user's live sessions")
    @errors(404)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """List a user's live login sessions (admin, or yourself)."""
        return live_sessions(owned_or_404(User, user_id, owner="id").id)


@ns.route("/<uuid:user_id>/sessions/<uuid:session_id>")
@ns.param("user_id", "The user's id (a UUID)")
@ns.param("session_id", "The session's id (a UUID)")
class UserSession(Resource):
    @operation("endUserSession")
    @response(None, 204, "Session ended: its tokens stop working")
    @errors(404)
    def delete(self, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """End one of a user's sessions (admin, or yourself)."""
        revoke(owned_or_404(User, user_id, owner="id").id, session_id)
