"""`shequ user add|list|disable|enable|reset-password|grant|bootstrap`: accounts, roles and jurisdictions.

Passwords are prompted (hidden, twice), generated (``--generate``, printed once) or read from standard
input (``--password-stdin``); never taken from the command line. Every change is written to the audit log.
"""

from __future__ import annotations

import sys

import typer

user_app = typer.Typer(help="账户 accounts: people who log in, their roles and jurisdictions.", no_args_is_help=True)


def _engine():
    from gis_api.db import get_engine

    return get_engine()


def cli_principal():
    """The operator at the console (audited as ``cli:<OS user>``, acting as admin)."""
    import getpass

    from gis_api.auth.roles import ADMIN, Principal

    try:
        who = getpass.getuser()
    except Exception:  # pragma: no cover - no user name in a bare container
        who = "unknown"
    return Principal(role=ADMIN, name=f"cli:{who}", method="cli")


def _audit(conn, action: str, record: str, **kw) -> None:
    from gis_api.auth import audit

    audit.append(conn, audit.AuditEntry.of(cli_principal(), action, record_ids=[record], endpoint="cli", **kw))


def _password(name: str, password_stdin: bool, generate: bool) -> tuple[str, bool]:
    """(password, generated?) from stdin, the generator or a hidden prompt; checked by the policy."""
    from gis_api.auth import passwords

    if password_stdin and generate:
        raise typer.BadParameter("--password-stdin 与 --generate 只能选一个 give one of them")
    if generate:
        return passwords.generate_password(), True
    if password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = typer.prompt("密码 password", hide_input=True, confirmation_prompt=True)
    passwords.check_policy(pw, name)
    return pw, False


@user_app.command("add")
def add(
    name: str = typer.Argument(..., help="登录名 login name"),
    role: str = typer.Option(..., "--role", help="admin, street, community, grid_manager, police, planner"),
    display_name: str = typer.Option(None, "--display-name", help="姓名 display name"),
    phone: str = typer.Option(None, "--phone", help="联系电话（个人信息，按角色遮蔽） contact phone"),
    office: str = typer.Option(None, "--office", help="办公地点 office"),
    grant: list[str] = typer.Option(None, "--grant", help="辖区 KIND:CODE（township/community/grid/police_area），可重复"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="从标准输入读取密码 read it from stdin"),
    generate: bool = typer.Option(False, "--generate", help="生成随机密码并显示一次 generate and print it once"),
) -> None:
    """新增账户 add an account (and its jurisdictions)."""
    from gis_api.auth import store

    grants = [_split_grant(g) for g in grant or []]
    password, generated = _password(name, password_stdin, generate)
    with _engine().begin() as conn:
        user = store.create_user(conn, name, role, password, display_name, phone, office,
                                 created_by=cli_principal().name)
        for kind, code in grants:
            store.grant(conn, name, kind, code, granted_by=cli_principal().name)
        _audit(conn, "account.create", f"user:{name}",
               after={"name": name, "role": role, "grants": [f"{k}:{c}" for k, c in grants]})
    typer.echo(f"已创建 created: {user['name']} ({user['role']})")
    if generated:
        typer.echo(f"密码（仅显示一次）password (shown once): {password}")


def _split_grant(value: str) -> tuple[str, str]:
    kind, sep, code = value.partition(":")
    if not sep or not code:
        raise typer.BadParameter(f"辖区须写作 KIND:CODE expected KIND:CODE, got {value!r}")
    return kind, code


@user_app.command("list")
def list_(
    show_contacts: bool = typer.Option(False, "--show-contacts", help="明文显示联系电话（记入审计） phones in clear (audited)"),
) -> None:
    """列出账户 list accounts (phones masked unless --show-contacts)."""
    from gis_api.auth import masking, store

    with _engine().begin() as conn:
        rows = store.list_users(conn)
        if show_contacts:
            _audit(conn, "account.read_clear", "user:*", detail={"fields": ["contact_phone"], "count": len(rows)})
    for u in rows:
        state = "停用 disabled" if u["disabled"] else ("锁定 locked" if u["locked_until"] else "启用 enabled")
        phone = u["contact_phone"] if show_contacts else masking.mask_phone(u["contact_phone"])
        typer.echo(f"{u['name']}\t{u['role']}\t{state}\t{u['display_name']}\t{phone or ''}\t{','.join(u['grants'])}")


def _set_disabled(name: str, disabled: bool) -> None:
    from gis_api.auth import store

    with _engine().begin() as conn:
        store.set_disabled(conn, name, disabled)
        _audit(conn, "account.disable" if disabled else "account.enable", f"user:{name}",
               after={"disabled": disabled})
    typer.echo(f"{'已停用 disabled' if disabled else '已启用 enabled'}: {name}")


@user_app.command("disable")
def disable(name: str = typer.Argument(..., help="登录名 login name")) -> None:
    """停用账户（并结束其会话） disable an account and end its sessions."""
    _set_disabled(name, True)


@user_app.command("enable")
def enable(name: str = typer.Argument(..., help="登录名 login name")) -> None:
    """重新启用账户 enable a disabled account."""
    _set_disabled(name, False)


@user_app.command("reset-password")
def reset_password(
    name: str = typer.Argument(..., help="登录名 login name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="从标准输入读取密码 read it from stdin"),
    generate: bool = typer.Option(False, "--generate", help="生成随机密码并显示一次 generate and print it once"),
) -> None:
    """重置密码（解锁并结束会话） reset a password, unlock the account, end its sessions."""
    from gis_api.auth import store

    password, generated = _password(name, password_stdin, generate)
    with _engine().begin() as conn:
        store.set_password(conn, name, password)
        _audit(conn, "account.reset_password", f"user:{name}")
    typer.echo(f"已重置 password reset: {name}")
    if generated:
        typer.echo(f"密码（仅显示一次）password (shown once): {password}")


@user_app.command("grant")
def grant_(
    name: str = typer.Argument(..., help="登录名 login name"),
    jurisdiction: str = typer.Argument(..., help="KIND:CODE，如 community:310101002001"),
    revoke: bool = typer.Option(False, "--revoke", help="收回该辖区 take it away"),
) -> None:
    """授予（或收回）辖区 grant (or revoke) a jurisdiction."""
    from gis_api.auth import store

    kind, code = _split_grant(jurisdiction)
    with _engine().begin() as conn:
        if revoke:
            changed = store.revoke_grant(conn, name, kind, code)
            action = "account.revoke_grant"
        else:
            changed = store.grant(conn, name, kind, code, granted_by=cli_principal().name)
            action = "account.grant"
        if changed:
            _audit(conn, action, f"user:{name}", after={"kind": kind, "code": code})
    verb = ("已收回 revoked" if revoke else "已授予 granted") if changed else "未变 unchanged"
    typer.echo(f"{verb}: {name} {kind}:{code}")


@user_app.command("bootstrap")
def bootstrap() -> None:
    """安全默认：无管理员时创建 admin（随机密码写入仅属主可读的文件）；演示模式下创建演示账户。"""
    from gis_api.auth.bootstrap import ADMIN_PASSWORD_FILE, ensure_admin, ensure_demo_accounts
    from gis_api.auth.settings import AuthSettings

    settings = AuthSettings()
    with _engine().begin() as conn:
        password = ensure_admin(conn, settings)
        demo = ensure_demo_accounts(conn, settings)
    if password:
        typer.echo(f"已创建管理员 admin created: user admin, password {password}")
        typer.echo(f"  (also in {settings.secrets_dir / ADMIN_PASSWORD_FILE}, mode 0600)")
    else:
        typer.echo("管理员已存在 an admin account exists")
    typer.echo("演示模式 demo mode: " + ("开启 ON" if settings.demo else "关闭 off"))
    for account in demo.created:
        grant = ":".join(account.jurisdiction) if account.jurisdiction else ""
        typer.echo(f"  演示 demo {account.role}: {account.name} {grant}")
    if demo.file:
        typer.echo(f"  演示账户密码 demo passwords: {demo.file} (mode 0600)")
    for note in demo.notes:
        typer.secho(f"注意 note: {note}", fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    """Add ``shequ user``."""
    app.add_typer(user_app, name="user")
