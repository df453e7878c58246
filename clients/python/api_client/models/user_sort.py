from typing import Literal

UserSort = Literal["created_at", "email"]

USER_SORT_VALUES: set[UserSort] = {
    "created_at",
    "email",
}


def check_user_sort(value: str) -> UserSort:
    if value in USER_SORT_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {USER_SORT_VALUES!r}")
