"""The plate check (truncated HMAC-SHA256): stable, refuses a forged check and a mistyped code. Pure."""

from __future__ import annotations

from address_registry.codes import is_valid, with_check
from address_registry.plates import CHECK_LEN, plate_check, plate_url, verify_plate

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
CODE = "31010100001000019"


def _valid_code() -> str:
    """A well-formed code (its check digit right)."""
    code = with_check(CODE[:-1])
    assert is_valid(code)
    return code


def test_check_is_stable_and_short():
    code = _valid_code()
    check = plate_check(code, KEY)
    assert check == plate_check(code, KEY)  # stable: a printed plate keeps verifying
    assert len(check) == CHECK_LEN and check.isalnum() and check.upper() == check
    assert plate_check(code, OTHER_KEY) != check  # the key matters
    assert verify_plate(code, check, KEY)
    assert verify_plate(code, check.lower(), KEY)  # a hand-typed check in lower case


def test_url_holds_code_and_check():
    code = _valid_code()
    url = plate_url("https://gis.example.cn/", code, KEY)
    assert url == f"https://gis.example.cn/p/{code}?c={plate_check(code, KEY)}"
    assert plate_url("https://gis.example.cn", code, KEY) == url


def test_forged_check_and_mistyped_code_are_refused():
    code = _valid_code()
    check = plate_check(code, KEY)
    forged = ("A" if check[0] != "A" else "B") + check[1:]
    assert not verify_plate(code, forged, KEY)
    assert not verify_plate(code, check, OTHER_KEY)  # made with another key (a rotated key)
    mistyped = code[:-2] + str((int(code[-2]) + 1) % 10) + code[-1]
    assert not verify_plate(mistyped, check, KEY)
    for bad in (None, "", "short", check + "A", "1" * CHECK_LEN, check[:-1] + "!"):
        assert not verify_plate(code, bad, KEY)


def test_demo_staff_names_are_reproducible_and_marked():
    from gis_api.plates import DEMO_MARK, demo_staff_name

    assert demo_staff_name("310101001001") == demo_staff_name("310101001001")
    assert demo_staff_name("310101001001").endswith(DEMO_MARK)
