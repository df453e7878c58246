"""The resource toolkit: everything a resource module imports, from one place.

from app.toolkit import Namespace, Resource, body, current_user, errors, response, ...
"""

from flask_restx import Namespace, Resource

from app.core.errors import ApiError
from app.toolkit.declare import Answer, alternative, body, errors, operation, query, response
from app.toolkit.identity import admin_only, current_user, me
from app.toolkit.markers import always_answered, exempt, hashes_password, public, refresh_token
from app.toolkit.pagination import keyset_page
from app.toolkit.resources import check_if_match, created, no_content, owned_or_404
from app.toolkit.schemas import Bool, Choice, ListQuerySchema, PageSchema, Text, page_items

__all__ = [
    "Answer",
    "ApiError",
    "Bool",
    "Choice",
    "ListQuerySchema",
    "Namespace",
    "PageSchema",
    "Resource",
    "Text",
    "admin_only",
    "alternative",
    "always_answered",
    "body",
    "check_if_match",
    "created",
    "current_user",
    "errors",
    "exempt",
    "hashes_password",
    "keyset_page",
    "me",
    "no_content",
    "operation",
    "owned_or_404",
    "page_items",
    "public",
    "query",
    "refresh_token",
    "response",
]
