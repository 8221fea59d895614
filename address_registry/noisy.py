"""Noisy rewrites of registry addresses: the accuracy benchmark's and the tests' query generator.

Five documented forms (docs/benchmarks.md, "Geocoding"), each deterministic for a seed:

- ``dropped_levels``  — province, city and district left out: 中山东一路3号
- ``alias``           — the road or building named by an alias that identifies one address
                        (外滩3号, 东方明珠电视塔, a former road name); addresses without one are skipped;
                        and compounds (小区): a compound by one of its names (崂山三村, 崂山3村, a former
                        name), an address inside one by the compound name and its number, building…
                        without the road (三航小区17号) when that number is unique in the compound
- ``numeral_variants``— Chinese numerals and full-width digits, 栋/座/号楼 for 幢, 户 for 室:
                        上海市黄浦区中山东一路三号 (addresses with a number only)
- ``typo``            — one slip in the road name: half are input-method homophones (a character
                        replaced by another with the same toneless pinyin, 宁波路 → 宁博路), a quarter a
                        dropped character (names of 4+ characters), a quarter a doubled one
- ``typo_random``     — (stress test, not one of the five) one character replaced by a random common
                        character: often truly ambiguous (宁应路: 宁波路 or 宁安路?)
- ``reordered_noise`` — district after the street, spaces and punctuation, a contact name and phone:
                        中山东一路 3号， 黄浦区 上海市  联系人：王先生 13912345678
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from address_registry.records import AddressRecord, AliasRecord
from address_registry.textnorm import int_to_cn, normalize_text

FORMS = ("dropped_levels", "alias", "numeral_variants", "typo", "reordered_noise")
_TYPO_CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
_EXTRA_CHARS = "博波泊伯柏浦普谱埔甫府富复福附东冬懂董动洞栋中钟忠终种众重山衫删珊善扇陕闪南男难楠楠北背备被贝杯京经精晶井景静境竟敬镜路鹿露陆录禄鲁卢炉芦虏街阶接杰节结洁界借介解姐戒道到倒导盗岛稻德得巷向象像项相香乡湘祥翔享响想西希溪息喜洗细戏系夕汉汗含寒韩喊旱杭行航沪户护湖虎互胡壶淮怀槐坏黄皇凰煌晃荒慌宁凝柠拧泞延言研岩盐沿颜炎严演眼宴燕雁艳验江将姜浆奖讲匠降酱浙这者哲折遮蔗福建健件见剑鉴箭荐舰金今斤津紧进近尽锦劲晋禁靖静境九久酒旧救就舅"
_NAMES = ("王先生", "李女士", "张三", "刘师傅", "陈老师", "赵经理")


def _pinyin(ch: str) -> str:
    from pypinyin import lazy_pinyin

    return lazy_pinyin(ch)[0]


_HOMOPHONES: dict[str, list[str]] | None = None


def _homophones() -> dict[str, list[str]]:
    """Common characters grouped by toneless pinyin (what an input method offers for one syllable)."""
    global _HOMOPHONES
    if _HOMOPHONES is None:
        groups: dict[str, list[str]] = {}
        for ch in dict.fromkeys(_TYPO_CHARS + _EXTRA_CHARS):
            groups.setdefault(_pinyin(ch), []).append(ch)
        _HOMOPHONES = groups
    return _HOMOPHONES


def _determined(typo: str, road: str, names: list[str]) -> bool:
    """A slip is kept only when the intended road is strictly the nearest road name to it (Levenshtein):
    a slip as close to another road (延安中路 → 延安路, as near to 延安东路) has no right answer."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    key, target = normalize_text(typo), normalize_text(road)
    if key in names:
        return False
    best = process.extract(key, names, scorer=Levenshtein.distance, limit=3)
    if not best or best[0][0] != target:
        return False
    return len(best) == 1 or best[1][1] > best[0][1]


def _fullwidth_digits(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def _cn_numerals(text: str) -> str:
    """Arabic numbers in front of a number word → Chinese numerals (32号 → 三十二号)."""
    import re

    return re.sub(r"(\d+)(?=号|弄|幢|栋|座|单元|层|室)", lambda m: int_to_cn(int(m.group(1))), text)


def _tail(rec: AddressRecord) -> str:
    c = rec.components
    return "".join(c.get(k, "") for k in ("house_number", "building", "unit", "floor", "room"))


def _unique_aliases(aliases: Iterable[AliasRecord]) -> dict[str, list[str]]:
    counts = Counter(normalize_text(a.alias) for a in aliases)
    out: dict[str, list[str]] = {}
    for a in aliases:
        key = normalize_text(a.alias)
        if counts[key] == 1 and len(key) >= 2 and not a.alias.isascii():
            out.setdefault(a.address_code, []).append(a.alias)
    return out


def noisy_queries(records: list[AddressRecord], aliases: Iterable[AliasRecord] = (), seed: int = 7,
                  road_names: Iterable[str] = (), random_typos: bool = False) -> list[tuple[str, str, str]]:
    """(form, query text, expected address code) for each active record and form that applies.

    A typo is kept only when the damaged name is not itself a road name.
    """
    rng = random.Random(seed)
    alias_of = _unique_aliases(aliases)
    known_roads = {normalize_text(n) for n in road_names} | {
        normalize_text(r.components.get("road", "")) for r in records if r.level == "road"}
    known_list = sorted(known_roads)
    out: list[tuple[str, str, str]] = []
    for rec in sorted(records, key=lambda r: r.code):
        if rec.status != "active" or rec.level not in ("road", "house_number", "building", "unit", "floor", "room"):
            continue
        c = rec.components
        road, tail = c.get("road", ""), _tail(rec)
        district = c.get("district", "")
        upper = "上海市" + district
        out.append(("dropped_levels", road + tail, rec.code))
        # alias: the address's own alias, else an alias of its house or road
        names = alias_of.get(rec.code)
        if names:
            out.append(("alias", rng.choice(names) + ("" if rec.level in ("road", "house_number") else
                                                        c.get("building", "") + c.get("unit", "") + c.get("room", "")),
                        rec.code))
        elif rec.level == "house_number":
            road_code = rec.parent_code
            if road_code in alias_of:
                out.append(("alias", upper + rng.choice(alias_of[road_code]) + tail, rec.code))
        if tail:  # a road alone has no number to vary
            variant = _cn_numerals(tail)
            variant = variant.replace("幢", rng.choice(("栋", "座", "号楼"))).replace("室", "户")
            if variant == tail or rng.random() < 0.3:
                variant = _fullwidth_digits(variant)
            out.append(("numeral_variants", upper + road + variant, rec.code))
        cjk = [i for i, ch in enumerate(road) if "\u4e00" <= ch <= "\u9fff"]
        if len(cjk) >= 3:
            typo = _road_typo(rng, road, cjk, known_list, random_chars=False)
            if typo is not None:
                out.append(("typo", upper + typo + tail, rec.code))
        if random_typos and len(cjk) >= 3:
            typo = _road_typo(rng, road, cjk, known_list, random_chars=True)
            if typo is not None:
                out.append(("typo_random", upper + typo + tail, rec.code))
        noise = f" 联系人：{rng.choice(_NAMES)} 1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}"
        out.append(("reordered_noise", f"{road} {tail}， {district} 上海市 {noise}".replace("  ", " "), rec.code))
    out.extend(_compound_alias_queries(records, alias_of, random.Random(f"{seed}-compound")))
    return out


def _road_typo(rng: random.Random, road: str, cjk: list[int], known_list: list[str],
               random_chars: bool) -> str | None:
    """A damaged road name (at most ten tries) that still determines the road, or None.

    ``random_chars``: substitute a random character (the stress form), else a homophone."""
    for _ in range(10):
        chars = list(road)
        if random_chars:
            op = rng.choice(("sub", "sub", "del", "dup")) if len(road) >= 4 else rng.choice(("sub", "dup"))
        else:
            op = rng.choice(("homophone", "homophone", "del", "dup")) if len(road) >= 4 else \
                rng.choice(("homophone", "homophone", "dup"))
        i = rng.choice(cjk)
        if op == "homophone":
            same = [c for c in _homophones().get(_pinyin(chars[i]), ()) if c != chars[i]]
            if not same:
                continue
            chars[i] = rng.choice(same)
        elif op == "sub":
            chars[i] = rng.choice(_TYPO_CHARS)
        elif op == "del":
            del chars[i]
        else:
            chars.insert(i, chars[i])
        typo = "".join(chars)
        if typo != road and _determined(typo, road, known_list):
            return typo
    return None


def _compound_alias_queries(records: list[AddressRecord], alias_of: dict[str, list[str]],
                            rng: random.Random) -> list[tuple[str, str, str]]:
    """``alias`` queries through compound names (own random stream: the other forms stay as they were)."""
    active: dict[str | None, AddressRecord] = {r.code: r for r in records if r.status == "active"}
    # (compound, house number) → the house numbers of that number inside the compound
    houses: dict[tuple[str | None, str], list[str]] = {}
    for r in active.values():
        if r.level == "house_number" and r.compound_code:
            key = (r.compound_code, normalize_text(r.components.get("house_number", "")))
            houses.setdefault(key, []).append(r.code)
    out = []
    for rec in sorted(active.values(), key=lambda r: r.code):
        if rec.level == "compound":
            names = alias_of.get(rec.code)
            if names:
                out.append(("alias", rng.choice(names), rec.code))
            continue
        names = alias_of.get(rec.compound_code or "")
        if not names or rec.level not in ("house_number", "building", "unit", "floor", "room"):
            continue
        hits = houses.get((rec.compound_code, normalize_text(rec.components.get("house_number", ""))), [])
        house: AddressRecord | None = rec
        while house is not None and house.level != "house_number":
            house = active.get(house.parent_code)
        if len(hits) == 1 and house is not None and hits[0] == house.code:
            out.append(("alias", rng.choice(names) + _tail(rec), rec.code))
    return out
