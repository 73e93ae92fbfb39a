"""URL converters. ``id``: a database id; longer digit strings do not match (404, not a 500
from the database when a number exceeds a bigint)."""

from django.urls import register_converter


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(IdConverter, "id")
