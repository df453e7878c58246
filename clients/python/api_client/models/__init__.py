"""Contains all the data models used in inputs/outputs"""

from .accepted import Accepted
from .admin_user_update_patch import AdminUserUpdatePatch
from .audit_action import AuditAction
from .audit_event import AuditEvent
from .audit_event_details_type_0 import AuditEventDetailsType0
from .audit_event_page import AuditEventPage
from .health import Health
from .item import Item
from .item_input import ItemInput
from .item_input_patch import ItemInputPatch
from .item_page import ItemPage
from .login import Login
from .login_token import LoginToken
from .mfa_code import MfaCode
from .mfa_enrolment import MfaEnrolment
from .mfa_login import MfaLogin
from .mfa_status import MfaStatus
from .new_recovery_codes import NewRecoveryCodes
from .password_change import PasswordChange
from .password_proof import PasswordProof
from .password_reset_confirm import PasswordResetConfirm
from .password_reset_request import PasswordResetRequest
from .problem import Problem
from .problem_errors import ProblemErrors
from .profile_update_patch import ProfileUpdatePatch
from .register import Register
from .role import Role
from .session import Session
from .session_list import SessionList
from .sort_order import SortOrder
from .step_up import StepUp
from .token import Token
from .token_type import TokenType
from .user import User
from .user_create import UserCreate
from .user_page import UserPage
from .user_sort import UserSort
from .verify_email import VerifyEmail

__all__ = (
    "Accepted",
    "AdminUserUpdatePatch",
    "AuditAction",
    "AuditEvent",
    "AuditEventDetailsType0",
    "AuditEventPage",
    "Health",
    "Item",
    "ItemInput",
    "ItemInputPatch",
    "ItemPage",
    "Login",
    "LoginToken",
    "MfaCode",
    "MfaEnrolment",
    "MfaLogin",
    "MfaStatus",
    "NewRecoveryCodes",
    "PasswordChange",
    "PasswordProof",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "Problem",
    "ProblemErrors",
    "ProfileUpdatePatch",
    "Register",
    "Role",
    "Session",
    "SessionList",
    "SortOrder",
    "StepUp",
    "Token",
    "TokenType",
    "User",
    "UserCreate",
    "UserPage",
    "UserSort",
    "VerifyEmail",
)
