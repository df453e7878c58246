from typing import Literal

AuditAction = Literal[
    "email.verified",
    "login.failed",
    "login.mfa_failed",
    "login.mfa_required",
    "login.succeeded",
    "mfa.disabled",
    "mfa.enabled",
    "mfa.enrolment_started",
    "mfa.recovery_code_used",
    "mfa.recovery_codes_regenerated",
    "mfa.reset",
    "password.changed",
    "password.reset",
    "password.reset_requested",
    "refresh_token.reused",
    "session.revoked",
    "sessions.revoked_all",
    "user.activation_changed",
    "user.created",
    "user.deleted",
    "user.email_change_requested",
    "user.email_changed",
    "user.registered",
    "user.role_changed",
]

AUDIT_ACTION_VALUES: set[AuditAction] = {
    "email.verified",
    "login.failed",
    "login.mfa_failed",
    "login.mfa_required",
    "login.succeeded",
    "mfa.disabled",
    "mfa.enabled",
    "mfa.enrolment_started",
    "mfa.recovery_code_used",
    "mfa.recovery_codes_regenerated",
    "mfa.reset",
    "password.changed",
    "password.reset",
    "password.reset_requested",
    "refresh_token.reused",
    "session.revoked",
    "sessions.revoked_all",
    "user.activation_changed",
    "user.created",
    "user.deleted",
    "user.email_change_requested",
    "user.email_changed",
    "user.registered",
    "user.role_changed",
}


def check_audit_action(value: str) -> AuditAction:
    if value in AUDIT_ACTION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {AUDIT_ACTION_VALUES!r}")
