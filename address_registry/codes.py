"""Standard-address codes (标准地址编码): hierarchical digits plus a GB/T 17710 check digit.

The scheme is documented in docs/address-code.md. In short, a code's body is the concatenation of
fixed-width segments from the district down to the address's own level, so a parent's body is a
prefix of its children's bodies and the level can be read from the length:

    district      DDDDDD                               6  (GB/T 2260)
    township      DDDDDDTTT                            9  (admin code, attribute only)
    community     DDDDDDTTTCCC                        12  (admin code, attribute only)
    compound      DDDDDD CCCC                         10  (小区 / 院落, child of the district)
    road          DDDDDD RRRRR                        11
    house_number  DDDDDD RRRRR HHHHH                  16
    building      ... HHHHH BBB                       19
    unit          ... BBB UU                          21
    floor         ... UU FFF                          24
    room          ... FFF MMMM                        28

and one check digit is appended (ISO 7064 / GB/T 17710 hybrid system MOD 11,10), which catches every
single mistyped digit and nearly every swap of two neighbouring digits.
"""

from __future__ import annotations

from functools import lru_cache

from address_registry.errors import CodeError

SEGMENTS: tuple[tuple[str, int], ...] = (
    ("district", 6),
    ("road", 5),
    ("house_number", 5),
    ("building", 3),
    ("unit", 2),
    ("floor", 3),
    ("room", 4),
)
BODY_LENGTH = {}
_total = 0
for _level, _width in SEGMENTS:
    _total += _width
    BODY_LENGTH[_level] = _total
BODY_LENGTH_ADMIN = {"township": 9, "community": 12}
# A compound (小区 / 院落) hangs off its district beside the roads: district + a 4-digit serial. Its
# length (10) differs from every other level's, so the level is still read from the length.
COMPOUND_WIDTH = 4
BODY_LENGTH["compound"] = BODY_LENGTH["district"] + COMPOUND_WIDTH
LEVEL_OF_BODY_LENGTH = {n: lvl for lvl, n in {**BODY_LENGTH, **BODY_LENGTH_ADMIN}.items()}
SEGMENT_WIDTH = {**dict(SEGMENTS), "compound": COMPOUND_WIDTH}


def _run(p: int, digits: str) -> int:
    """The MOD 11,10 state after ``digits``, starting from state ``p`` (digits checked by the caller)."""
    for ch in digits:
        s = (p + ord(ch) - 48) % 10 or 10
        p = (s * 2) % 11
    return p


@lru_cache(maxsize=1 << 16)
def _state(body: str) -> int:
    """The MOD 11,10 state after a whole body. Cached: a parent's children are issued (and parents
    validated) one after another, so a child's digit continues from its parent's state over its own
    3–4 digits instead of re-reading the parent's 20–30 (issue 14: 39 of the 65 s a 10⁶-address
    registry build took went to check digits)."""
    return _run(10, body)


def _digits(body: str) -> None:
    if not body.isdigit() or not body.isascii():
        raise CodeError(f"编码只能由数字组成 code body must be decimal digits: {body!r}")


def check_digit(body: str) -> str:
    """GB/T 17710 (ISO 7064) MOD 11,10 check digit of a string of decimal digits."""
    _digits(body)
    return str((11 - _state(body)) % 10)


def with_check(body: str) -> str:
    """``body`` with its check digit appended."""
    return body + check_digit(body)


def is_valid(code: str) -> bool:
    """True when `code` has a known length, only digits and a correct check digit."""
    if not isinstance(code, str) or len(code) < 2 or not code.isdigit() or not code.isascii():
        return False
    if len(code) - 1 not in LEVEL_OF_BODY_LENGTH:
        return False
    return check_digit(code[:-1]) == code[-1]


def validate(code: str) -> str:
    """``code`` when valid, else CodeError."""
    if not is_valid(code):
        raise CodeError(f"标准地址编码无效 invalid standard-address code: {code!r}")
    return code


def level_of(code: str) -> str:
    """The level a (valid) code belongs to, read from its length."""
    return LEVEL_OF_BODY_LENGTH[len(validate(code)) - 1]


def body(code: str) -> str:
    """The code without its check digit (CodeError when invalid)."""
    return validate(code)[:-1]


def district_code(district: str) -> str:
    """Code of a district from its 6-digit GB/T 2260 code."""
    if len(district) != 6 or not district.isdigit():
        raise CodeError(f"区县代码应为6位数字 district code must have 6 digits: {district!r}")
    return with_check(district)


def admin_code(admin: str) -> str:
    """Code of a township (9-digit) or community (12-digit) admin unit."""
    if len(admin) not in (6, 9, 12) or not admin.isdigit():
        raise CodeError(f"区划代码应为6/9/12位数字 admin code must have 6, 9 or 12 digits: {admin!r}")
    return with_check(admin)


def child_code(parent: str, level: str, serial: int) -> str:
    """Code of the `serial`-th child at `level` under the address `parent` (a code with check digit)."""
    parent_body = body(parent)
    parent_level = LEVEL_OF_BODY_LENGTH[len(parent_body)]
    names = [s[0] for s in SEGMENTS]
    if level == "compound":
        ok = parent_level == "district"
    else:
        ok = parent_level in names and level in names and names.index(level) == names.index(parent_level) + 1
    if not ok:
        raise CodeError(
            f"{level} 不能直接挂在 {parent_level} 下 a {level} cannot be a child of a {parent_level}"
        )
    width = SEGMENT_WIDTH[level]
    if not 1 <= serial < 10**width:
        raise CodeError(f"序号超出范围 serial {serial} out of range for {level} (1..{10**width - 1})")
    segment = str(serial).zfill(width)
    # the parent's state is cached by its validation just above (`body`): continue from it
    return parent_body + segment + str((11 - _run(_state(parent_body), segment)) % 10)


def parent_of(code: str) -> str | None:
    """The parent address code (one level up the tree), or None for a district / admin unit."""
    b = body(code)
    level = LEVEL_OF_BODY_LENGTH[len(b)]
    if level in ("district", "township", "community"):
        return None
    width = SEGMENT_WIDTH[level]
    return with_check(b[:-width])


def serial_of(code: str) -> int:
    """The code's own segment as an integer (its serial under its parent)."""
    b = body(code)
    level = LEVEL_OF_BODY_LENGTH[len(b)]
    width = SEGMENT_WIDTH.get(level, 3)
    return int(b[-width:])


def district_of(code: str) -> str:
    """The 6-digit GB/T 2260 district code inside any address code."""
    return body(code)[:6]


class SerialAllocator:
    """The one rule for issuing codes, shared by the build and by changes through the API / imports.

    Serials are issued per (parent, level) as ``max(serial ever issued) + 1`` and never reused: feed it
    every code ever issued (any version, any status) with :meth:`see`, then ask :meth:`next_code`.
    """

    def __init__(self, issued=()):
        self._max: dict[tuple[str, str], int] = {}
        for code in issued:
            self.see(code)

    def see(self, code: str) -> None:
        """Record an issued code (codes that are not valid address codes are ignored)."""
        if not is_valid(code):
            return
        parent = parent_of(code)
        if parent is None:
            return
        slot = (parent, level_of(code))
        self._max[slot] = max(self._max.get(slot, 0), serial_of(code))

    def by_district(self) -> dict[str, SerialAllocator]:
        """This allocator cut by the district (the first 6 digits) of each parent: every child's code lies in
        its parent's district, so each part issues there what this one would."""
        out: dict[str, SerialAllocator] = {}
        for (parent, level), serial in self._max.items():
            part = out.get(parent[:6])
            if part is None:
                part = out[parent[:6]] = SerialAllocator()
            part._max[(parent, level)] = serial
        return out

    def next_code(self, parent: str, level: str) -> str:
        """Issue the next free code of `level` under `parent` (and remember it as issued)."""
        slot = (parent, level)
        code = child_code(parent, level, self._max.get(slot, 0) + 1)
        self._max[slot] = self._max.get(slot, 0) + 1
        return code
