"""Token features for the CRF tagger (pure functions over strings).

Per token: the token and its neighbours in a ±3 window (unigrams, bigrams, trigrams), character classes,
a gazetteer of administrative-division names (GB/T 2260 province / city / county names, full and short
forms: where a match begins, continues or ends, and whether the same name already occurred earlier in
the address — the corpus marks repeated levels as ``redundant``), the number-suffix class of the next token
(号 → number, 幢/栋/座 → building, 单元/门 → unit, 层/楼 → floor, 室/户 → room), and what the address has
shown so far (how many numbers, whether a road word or a 号 came before), which separates ``roadno`` from
``houseno`` from ``roomno``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .normalize import Token, is_cjk

# Short forms of administrative names: 杭州市 → 杭州, 广西壮族自治区 → 广西 (only when ≥ 2 characters remain).
_ADMIN_SUFFIXES = (
    "维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "自治州", "自治县", "地区",
    "新区", "林区", "矿区", "省", "市", "区", "县", "盟", "旗",
)  # fmt: skip

_SUFFIX_CLASS = {
    "号": "NO", "弄": "LANE", "幢": "BLD", "栋": "BLD", "座": "BLD", "单元": "UNIT", "单": "UNIT", "门": "UNIT",
    "层": "FLR", "楼": "FLR", "室": "ROOM", "户": "ROOM", "-": "DASH", "#": "HASH",
    "路": "ROAD", "街": "ROAD", "道": "ROAD", "巷": "ROAD", "大道": "ROAD",
    "省": "ADM", "市": "ADM", "区": "ADM", "县": "ADM", "镇": "TOWN", "乡": "TOWN", "村": "VIL", "社": "VIL",
}  # fmt: skip
_ROAD_WORDS = frozenset("路街道巷")
# last characters of typical place / building names (小区, 花园, 大厦, 中心, 市场, 公司…)
_POI_HEADS = frozenset("苑园城厦场心司店院馆寓庄墅府湾邸居舍府坊中学厂")


def short_admin_name(name: str) -> str | None:
    for suf in _ADMIN_SUFFIXES:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return None


def build_lexicon(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Gazetteer from (code, name) rows of GB/T 2260: name → feature kinds such as ``p`` (province,
    2-digit code), ``c`` (city, 4-digit), ``d`` (county-level, 6-digit), with a ``s`` suffix for short forms."""
    lex: dict[str, set[str]] = {}
    for code, name in rows:
        kind = {2: "p", 4: "c", 6: "d"}.get(len(code))
        if kind is None or not name:
            continue
        lex.setdefault(name, set()).add(kind)
        short = short_admin_name(name)
        if short:
            lex.setdefault(short, set()).add(kind + "s")
    return {k: sorted(v) for k, v in lex.items()}


def _shape(t: str) -> str:
    c = t[0]
    if c.isascii():
        if c.isdigit():
            return "D" + str(min(len(t), 5))
        if c.isalpha():
            return "A"
    return t


def _cls(t: str) -> str:
    c = t[0]
    if c.isascii():
        if c.isdigit():
            return "D"
        if c.isalpha():
            return "A"
        if c == " ":
            return "S"
        return "P"
    if is_cjk(c):
        return "C"
    return "P"


class FeatureExtractor:
    def __init__(self, lexicon: dict[str, list[str]]):
        self.lexicon = lexicon
        self.prefixes = {k[:m] for k in lexicon for m in range(2, len(k) + 1)}

    def _lexicon_features(self, toks: list[str]) -> list[list[str]]:
        n = len(toks)
        feats: list[list[str]] = [[] for _ in range(n)]
        # one character per token: multi-character tokens (digits, Latin) never occur in admin names
        s = "".join(t if len(t) == 1 else "\x00" for t in toks)
        lex = self.lexicon
        prefixes = self.prefixes
        seen: set[str] = set()
        for i in range(n):
            best = 0
            j = i + 2
            while j <= n:
                name = s[i:j]
                if name not in prefixes:
                    break
                kinds = lex.get(name)
                if kinds is not None:
                    best = j - i
                    rep = name in seen
                    seen.add(name)
                    for k in kinds:
                        feats[i].append("lB" + k)
                        for m in range(i + 1, j - 1):
                            feats[m].append("lI" + k)
                        feats[j - 1].append("lE" + k)
                        if rep:
                            for m in range(i, j):
                                feats[m].append("lR" + k)
                j += 1
            if best:
                feats[i].append("lL" + str(min(best, 6)))
                if s.find(s[i : i + best], i + best) >= 0:
                    for m in range(i, i + best):
                        feats[m].append("lF")
        # generic repetition (the corpus marks repeated parts as redundant): the longest substring of
        # 2–6 tokens starting here that also occurs before / after it
        find = s.find
        for i in range(n - 1):
            L = 2
            while i + L <= n and L <= 6 and "\x00" not in s[i : i + L] and find(s[i : i + L], 0, i) >= 0:
                L += 1
            if L > 2:
                feats[i].append("rbB")
                for m in range(i + 1, i + L - 1):
                    feats[m].append("rbI")
            L = 2
            while i + L <= n and L <= 6 and "\x00" not in s[i : i + L] and find(s[i : i + L], i + L) >= 0:
                L += 1
            if L > 2:
                feats[i].append("rfB")
                for m in range(i + 1, i + L - 1):
                    feats[m].append("rfI")
        return feats

    def sequence(self, tokens: list[Token]) -> list[list[str]]:
        """Feature strings per token (built column by column: one list comprehension per feature kind)."""
        toks = [t.norm for t in tokens]
        n = len(toks)
        if n == 0:
            return []
        w = ["<s>", "<s>", "<s>", *map(_shape, toks), "</s>", "</s>", "</s>"]
        c = ["<", "<", "<", *map(_cls, toks), ">", ">", ">"]
        bg = [x + y for x, y in zip(w, w[1:], strict=False)]  # bg[j] = w[j] w[j+1]
        cg = [x + y + z for x, y, z in zip(c, c[1:], c[2:], strict=False)]  # cg[j] = c[j] c[j+1] c[j+2]
        sufget = _SUFFIX_CLASS.get
        suf = ["<", *(sufget(t, "") for t in toks), ">"]
        cols = [
            ["w=" + x for x in w[3 : 3 + n]],
            ["w-1=" + x for x in w[2 : 2 + n]],
            ["w-2=" + x for x in w[1 : 1 + n]],
            ["w-3=" + x for x in w[0:n]],
            ["w+1=" + x for x in w[4 : 4 + n]],
            ["w+2=" + x for x in w[5 : 5 + n]],
            ["w+3=" + x for x in w[6 : 6 + n]],
            ["w-2-1=" + x for x in bg[1 : 1 + n]],
            ["w-10=" + x for x in bg[2 : 2 + n]],
            ["w0+1=" + x for x in bg[3 : 3 + n]],
            ["w+12=" + x for x in bg[4 : 4 + n]],
            ["w-3-2=" + x for x in bg[0:n]],
            ["w+23=" + x for x in bg[5 : 5 + n]],
            ["w-1+1=" + x + y for x, y in zip(w[2 : 2 + n], w[4 : 4 + n], strict=True)],
            ["t-2=" + x + y for x, y in zip(bg[1 : 1 + n], w[3 : 3 + n], strict=True)],
            ["t-1=" + x + y for x, y in zip(bg[2 : 2 + n], w[4 : 4 + n], strict=True)],
            ["t0=" + x + y for x, y in zip(bg[3 : 3 + n], w[5 : 5 + n], strict=True)],
            ["c=" + x + y + z for x, y, z in zip(cg[1 : 1 + n], c[4 : 4 + n], c[5 : 5 + n], strict=True)],
            ["c0=" + x for x in cg[2 : 2 + n]],
        ]
        feats = self._lexicon_features(toks)
        n_digits = n_no = 0
        road_seen = adm_seen = poi_seen = False
        last1 = last2 = "^"
        for i in range(n):
            f = feats[i]
            s1 = suf[i + 2]
            ci = c[i + 3]
            f.append("ctx=" + str(min(n_digits, 3)) + str(min(n_no, 2)) + ("R" if road_seen else "")
                     + ("A" if adm_seen else "") + ("P" if poi_seen else ""))
            f.append("ls=" + last1 + "|" + last2)
            f.append("pos=" + (str(i) if i < 4 else "m") + "|" + (str(n - 1 - i) if n - 1 - i < 3 else "m"))
            if s1:
                f.append("s+1=" + s1)
            sc = suf[i + 1]
            if sc:
                f.append("s0=" + sc)
            if ci == "D":
                f.append("dx=" + s1 + "|" + suf[i] + "|" + str(min(n_digits, 3)) + "|" + str(min(n_no, 2)))
                n_digits += 1
            elif ci == "A":
                f.append("a=" + toks[i].lower())
            t = toks[i]
            if sc and sc != "DASH":
                last2, last1 = last1, sc
                if t == "号":
                    n_no += 1
                elif sc == "ROAD":
                    road_seen = True
                elif sc == "ADM":
                    adm_seen = True
            elif t in _POI_HEADS:
                poi_seen = True
                last2, last1 = last1, "POI"
        return [[*row, *extra] for row, extra in zip(zip(*cols), feats, strict=True)]
