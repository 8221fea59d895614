"""Roles, API-key scopes, the caller (`Principal`) and the one table of who may do what.

Pure: no database, no web framework. A decision is ``can(principal, action, target)``: the action must be
declared in ``ACTIONS``; the principal's role (or, for an API key, one of its scopes) must be listed; for
an action bound to a jurisdiction, a ``target`` (the record's location: township, community, grid and
police-station area codes, resolved by the caller's store) must lie inside one of the principal's grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from geo.errors import NotAuthenticated, PermissionDenied

ADMIN = "admin"
STREET = "street"
COMMUNITY = "community"
GRID_MANAGER = "grid_manager"
POLICE = "police"
PLANNER = "planner"
SYSTEM = "system"
PUBLIC = "public"

#: role → (Chinese title, English title)
ROLES: dict[str, tuple[str, str]] = {
    ADMIN: ("管理员（市、区）", "administrator (city / district)"),
    STREET: ("街道工作人员", "street (township) staff"),
    COMMUNITY: ("社区工作人员", "community staff"),
    GRID_MANAGER: ("网格员 / 微网格长", "grid manager"),
    POLICE: ("社区民警", "community police officer"),
    PLANNER: ("规划人员", "planner"),
    SYSTEM: ("对接系统（API 密钥）", "other system (API key)"),
    PUBLIC: ("公众（匿名）", "public (anonymous)"),
}
#: roles a person's account can have (system = API keys, public = nobody logged in)
USER_ROLES = (ADMIN, STREET, COMMUNITY, GRID_MANAGER, POLICE, PLANNER)
STAFF_ROLES = (ADMIN, STREET, COMMUNITY, GRID_MANAGER, POLICE, PLANNER)

#: jurisdiction kinds: township (街道) code, community (社区) code, grid / micro-grid code, police area code
JURISDICTION_KINDS = ("township", "community", "grid", "police_area")
#: the kind of grant a role's jurisdiction is made of (admin and planner are city-wide, no grants)
ROLE_JURISDICTION: dict[str, str] = {
    STREET: "township",
    COMMUNITY: "community",
    GRID_MANAGER: "grid",
    POLICE: "police_area",
}

#: API-key scopes → what they allow
SCOPES: dict[str, str] = {
    "geocode": "地理编码 geocoding",
    "features:read": "读取公开图层要素 read layer features",
    "tiles:read": "读取矢量瓦片 read vector tiles",
    "addresses:read": "读取内部地址（含门户级） read internal addresses (room level)",
    "addresses:write": "新增、修改、注销标准地址 write standard addresses",
    "grids:write": "修改网格与网格人员 write grids and grid staff",
    "siting:run": "运行选址与覆盖分析 run siting and coverage analyses",
    "audit:read": "读取审计日志 read the audit log",
}


@dataclass(frozen=True)
class Rule:
    """Who may do one action: roles, the API-key scope granting it, and whether it is jurisdiction-bound."""

    roles: frozenset[str]
    scope: str | None = None
    jurisdiction: bool = False
    title: str = ""


def _rule(roles: tuple[str, ...], scope: str | None = None, jurisdiction: bool = False, title: str = "") -> Rule:
    return Rule(frozenset(roles), scope, jurisdiction, title)


_EVERYONE = (*STAFF_ROLES, PUBLIC)
_OFFICE = (ADMIN, STREET, COMMUNITY)
#: who collects and reads the three 实 (一标三实): office roles, grid managers and community police
_RESIDENT_STAFF = (ADMIN, STREET, COMMUNITY, GRID_MANAGER, POLICE)

#: the declared actions; an action not listed here is refused to everyone
ACTIONS: dict[str, Rule] = {
    "features:read": _rule(_EVERYONE, "features:read", title="公开图层 public layers"),
    "features:read_internal": _rule(STAFF_ROLES, "features:read", title="内部图层 internal layers"),
    "tiles:read": _rule(_EVERYONE, "tiles:read", title="矢量瓦片 vector tiles"),
    "geocode": _rule(_EVERYONE, "geocode", title="地理编码 geocoding"),
    "addresses:read": _rule(_EVERYONE, "features:read", title="标准地址（至门牌） addresses to house number"),
    "addresses:read_internal": _rule(STAFF_ROLES, "addresses:read", title="门户级地址 room-level addresses"),
    "addresses:write": _rule(_OFFICE, "addresses:write", jurisdiction=True, title="编辑标准地址 edit addresses"),
    "addresses:import": _rule((ADMIN,), "addresses:write", title="批量导入地址 bulk import addresses"),
    "grids:read": _rule(_EVERYONE, "features:read", title="网格 grids"),
    "grids:write": _rule(_OFFICE, "grids:write", jurisdiction=True, title="编辑网格 edit grids"),
    "grids:staff": _rule((*_OFFICE, GRID_MANAGER), "grids:write", jurisdiction=True,
                         title="任免网格人员 grid staff"),
    "grids:staff_read": _rule(STAFF_ROLES, None, title="网格人员及联系方式 grid staff and contacts"),
    "siting:run": _rule((ADMIN, STREET, COMMUNITY, PLANNER), "siting:run", title="选址分析 siting"),
    "siting:save": _rule((ADMIN, PLANNER), None, jurisdiction=True, title="保存规划设施 save planned sites"),
    "police_areas:read": _rule((ADMIN, POLICE, STREET), None, title="派出所辖区 police areas"),
    "police_areas:write": _rule((ADMIN,), None, title="导入派出所辖区 import police areas"),
    "users:read": _rule((ADMIN,), None, title="账户 accounts"),
    "users:manage": _rule((ADMIN,), None, title="管理账户 manage accounts"),
    "keys:manage": _rule((ADMIN,), None, title="管理 API 密钥 manage API keys"),
    "audit:read": _rule((ADMIN,), "audit:read", title="审计日志 audit log"),
    "self:read": _rule(STAFF_ROLES, None, title="本人账户 own account"),
    # grid editing (issue 11, docs/grid-editing.md): grid managers draft, office staff review, admins apply
    "grids:edit": _rule((*_OFFICE, GRID_MANAGER), "grids:write", jurisdiction=True,
                        title="编辑网格草稿 draft grid edits"),
    "grids:edit_review": _rule(_OFFICE, "grids:write", jurisdiction=True,
                               title="审批、回退网格编辑 approve, reject, roll back grid edits"),
    "grids:edit_apply": _rule((ADMIN,), None, jurisdiction=True, title="直接生效网格编辑 apply grid edits directly"),
    "residents:read": _rule(_RESIDENT_STAFF, None, jurisdiction=True,
                            title="实有人口、房屋、单位 residents, houses and units (一标三实)"),
    "residents:write": _rule(_RESIDENT_STAFF, None, jurisdiction=True,
                             title="采集实有人口、房屋、单位 record residents, houses and units"),
    # issue 12: plate printing, bulk import, police–grid reconciliation, key places
    "plates:print": _rule(_OFFICE, None, jurisdiction=True, title="印制二维码门牌 print QR door plates"),
    "plates:reports": _rule(_RESIDENT_STAFF, None, jurisdiction=True, title="处理门牌纠错报告 plate reports"),
    "key_places:read": _rule(STAFF_ROLES, None, title="重点场所 key places"),
    "key_places:write": _rule(_OFFICE, None, jurisdiction=True, title="登记重点场所 edit key places"),
    "reconcile:import": _rule((ADMIN, POLICE), None, jurisdiction=True, title="导入公安一标三实数据 police extract"),
    "reconcile:run": _rule((ADMIN, POLICE), None, jurisdiction=True, title="公安与网格数据比对 run reconciliation"),
    "reconcile:read": _rule(_RESIDENT_STAFF, None, jurisdiction=True, title="比对任务 reconciliation tasks"),
    "reconcile:resolve": _rule(_RESIDENT_STAFF, None, jurisdiction=True, title="处理比对任务 resolve tasks"),
    # ---- planner workbench (issue 13): analysis jobs, named siting scenarios and their reports ----
    "analysis:jobs": _rule((ADMIN, PLANNER), "siting:run", title="分析任务 analysis jobs"),
    "scenarios:read": _rule((ADMIN, PLANNER), "siting:run", title="选址方案 siting scenarios"),
    "scenarios:write": _rule((ADMIN, PLANNER), "siting:run", title="保存选址方案 save siting scenarios"),
}

LOGIN_REQUIRED = "请先登录 login required"
DENIED = "无权执行此操作 permission denied"
OUTSIDE = "无权操作该对象（超出管辖范围或无此权限） not permitted on this record (outside your jurisdiction)"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a person (``user_id``), another system (``key_id``) or nobody (role ``public``)."""

    role: str = PUBLIC
    name: str = "anonymous"
    user_id: int | None = None
    key_id: str | None = None
    display_name: str = ""
    #: (kind, code) grants, kinds from JURISDICTION_KINDS
    jurisdictions: tuple[tuple[str, str], ...] = ()
    scopes: frozenset[str] = field(default_factory=frozenset)
    #: how the caller proved who it is: anonymous, password, token, session, api_key, cli
    method: str = "anonymous"

    @property
    def is_authenticated(self) -> bool:
        """True for anybody but the anonymous public."""
        return self.role != PUBLIC

    @property
    def actor(self) -> str:
        """The name written to the audit log and to ``changed_by``."""
        if self.key_id:
            return f"key:{self.key_id}"
        return self.name

    def codes(self, kind: str) -> frozenset[str]:
        """The granted codes of one jurisdiction kind."""
        return frozenset(code for k, code in self.jurisdictions if k == kind)

    def public_dict(self) -> dict:
        """What ``/auth/me`` may show of the principal itself."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "role_title": " ".join(ROLES.get(self.role, (self.role, ""))).strip(),
            "authenticated": self.is_authenticated,
            "jurisdictions": [{"kind": k, "code": c} for k, c in self.jurisdictions],
            "scopes": sorted(self.scopes),
            "method": self.method,
        }


ANONYMOUS = Principal()

#: a record's location, kind → code or codes (e.g. {"township": "…", "community": "…", "police_area": [...]})
Target = Mapping[str, "str | list[str] | tuple[str, ...] | frozenset[str] | None"]


def _target_codes(target: Target, kind: str) -> set[str]:
    value = target.get(kind)
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return {v for v in value if v}


def within(principal: Principal, target: Target) -> bool:
    """True when the record at ``target`` lies in one of the principal's grants (admin: everywhere)."""
    if principal.role in (ADMIN, PLANNER):
        return True
    if principal.role == SYSTEM:
        return not principal.jurisdictions or any(
            code in _target_codes(target, kind) for kind, code in principal.jurisdictions)
    return any(code in _target_codes(target, kind) for kind, code in principal.jurisdictions)


def can(principal: Principal, action: str, target: Target | None = None) -> bool:
    """May ``principal`` do ``action`` (on the record at ``target``, for a jurisdiction-bound action)?"""
    rule = ACTIONS.get(action)
    if rule is None:
        return False
    if principal.role == SYSTEM:
        if rule.scope is None or rule.scope not in principal.scopes:
            return False
    elif principal.role not in rule.roles:
        return False
    if rule.jurisdiction and target is not None:
        return within(principal, target)
    return True


def require(principal: Principal, action: str, target: Target | None = None) -> Principal:
    """Return the principal when it may do ``action``; else 401 (anonymous) or 403, naming no record."""
    if can(principal, action, target):
        return principal
    if not principal.is_authenticated:
        raise NotAuthenticated(LOGIN_REQUIRED, code="login_required")
    if target is not None and can(principal, action):
        raise PermissionDenied(OUTSIDE, code="outside_jurisdiction")
    raise PermissionDenied(DENIED)


def jurisdiction_filter(principal: Principal, action: str) -> dict[str, frozenset[str]] | None:
    """For listing queries: None = every record; else kind → codes a row must match (possibly empty)."""
    rule = ACTIONS.get(action)
    if rule is None or not rule.jurisdiction or principal.role in (ADMIN, PLANNER):
        return None
    if principal.role == SYSTEM and not principal.jurisdictions:
        return None
    out: dict[str, set[str]] = {}
    for kind, code in principal.jurisdictions:
        out.setdefault(kind, set()).add(code)
    return {k: frozenset(v) for k, v in out.items()}
