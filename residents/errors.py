"""Errors of the residents package: subclasses of `geo.errors`, each message naming the field (中文 + English)."""

from __future__ import annotations

from typing import Any

from geo.errors import Conflict, InvalidInput, NotFound


class InvalidField(InvalidInput):
    """A field breaks its rule (ID number, credit code, phone…); ``detail`` names the field."""

    code = "invalid_field"

    def __init__(self, field: str, zh: str, en: str, detail: dict[str, Any] | None = None):
        super().__init__(f"{field}：{zh} {field}: {en}", {"field": field, **(detail or {})})
        self.field = field


class InvalidIdNumber(InvalidField):
    """A citizen ID number (公民身份号码, GB 11643-1999) that fails its shape, date or check character."""

    code = "invalid_id_number"


class InvalidCreditCode(InvalidField):
    """A unified social credit code (统一社会信用代码, GB 32100-2015) that fails its shape or check character."""

    code = "invalid_credit_code"


class InvalidPhone(InvalidField):
    """A phone number that is neither a Chinese mobile nor a landline."""

    code = "invalid_phone"


class DuplicatePerson(Conflict):
    """A person with this ID number is already recorded; ``detail`` carries the existing id."""

    code = "duplicate_person"


class DuplicateUnit(Conflict):
    """A unit with this credit code is already recorded; ``detail`` carries the existing id."""

    code = "duplicate_unit"


class AddressNotFound(NotFound):
    """The standard address does not exist."""

    code = "address_not_found"


class AddressNotUsable(InvalidInput):
    """The standard address is retired or of a level that cannot carry the record."""

    code = "address_not_usable"


class RecordNotFound(NotFound):
    """No such person, unit or house record."""
