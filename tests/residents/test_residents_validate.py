"""Validators of the three 实 (pure): GB 11643 ID numbers, GB 32100 credit codes, passports, phones."""

from __future__ import annotations

from datetime import date

import pytest

from residents import validate as v
from residents.errors import InvalidCreditCode, InvalidField, InvalidIdNumber, InvalidPhone


def test_citizen_id_valid_with_derived_sex_and_birth_date():
    got = v.citizen_id("11010519491231002x")  # the standard's own example, lower-case x accepted
    assert got.number == "11010519491231002X"
    assert got.birth_date == date(1949, 12, 31) and got.sex == "F" and got.region == "110105"
    male = v.citizen_id("310101199001011235"[:17] + v.id_check_char("31010119900101123"))
    assert male.sex == "M"


def test_fifteen_digit_id_is_upgraded():
    got = v.citizen_id("110105491231002")
    assert got.number == "11010519491231002X" and got.upgraded_from == "110105491231002"


@pytest.mark.parametrize("bad, why", [
    ("110105194912310021", "校验码"),           # wrong check character (X expected)
    ("11010519491231002", "18 位"),             # too short
    ("1101051949123100AX", "17"),               # letters in the body
    ("99010519491231002X", "地址码"),           # no province 99
    ("110105194902300020", "出生日期"),         # 30 February
    ("110105290001010020", "出生日期"),         # born in the future
])
def test_citizen_id_invalid(bad, why):
    with pytest.raises(InvalidIdNumber) as err:
        v.citizen_id(bad)
    assert why in err.value.message and "id_number" in err.value.message
    assert err.value.detail["field"] == "id_number"


def test_check_digit_error_names_the_expected_character():
    good = "11010519491231002X"
    with pytest.raises(InvalidIdNumber) as err:
        v.citizen_id(good[:17] + "3")
    assert err.value.detail["expected"] == "X"


def test_credit_code_valid_and_invalid():
    assert v.credit_code("91350100m000100y43") == "91350100M000100Y43"
    body = "91310101MA1FL0000"
    assert v.credit_code(body + v.credit_check_char(body)).startswith("913101")
    for bad in ("91350100M000100Y44",      # check character
                "91350100M000100Y4",       # length
                "91350100M0001O0Y43",      # O is not in the character set
                "X1350100M000100Y43"):     # authority code
        with pytest.raises(InvalidCreditCode):
            v.credit_code(bad)


def test_passport_and_document_types():
    assert v.document("passport", "e 1234 5678")[0] == "E12345678"
    with pytest.raises(InvalidField):
        v.document("passport", "护照")
    with pytest.raises(InvalidField) as err:
        v.document("driving_licence", "123456")
    assert err.value.detail["field"] == "id_type"


@pytest.mark.parametrize("raw, norm", [
    ("13912345678", "13912345678"), ("+86 139-1234-5678", "13912345678"),
    ("021-63211234", "021-63211234"), ("(010)12345678转123", "010-12345678-123"),
    ("0431 88888888", "0431-88888888"),
])
def test_phone_valid(raw, norm):
    assert v.phone(raw) == norm


@pytest.mark.parametrize("bad", ["12345678901", "1391234567", "021-123", "phone", ""])
def test_phone_invalid(bad):
    with pytest.raises(InvalidPhone):
        v.phone(bad)
