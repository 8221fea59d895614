"""`shequ key create|list|revoke`: API keys for other systems (scoped, rate-limited, shown once)."""

from __future__ import annotations

import typer

key_app = typer.Typer(help="API 密钥 keys of other systems: scopes, expiry, rate limit.", no_args_is_help=True)


@key_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="用途或对接系统名称 what the key is for"),
    scope: list[str] = typer.Option(..., "--scope", help="权限范围，可重复：geocode, features:read, tiles:read, …"),
    expires_days: int = typer.Option(None, "--expires-days", min=1, help="有效天数（缺省不过期） days until expiry"),
    rate: int = typer.Option(None, "--rate", min=1, help="每分钟请求上限 requests per minute"),
) -> None:
    """创建 API 密钥（仅显示一次） create a key; it is printed once, only its hash is kept."""
    from datetime import UTC, datetime, timedelta

    from gis_api.auth import store
    from gis_api.auth.settings import AuthSettings
    from gis_api.commands.user import _audit, _engine, cli_principal

    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    with _engine().begin() as conn:
        row, plain = store.create_api_key(conn, name, scope, cli_principal().name, expires,
                                          rate or AuthSettings().key_rate_per_min)
        _audit(conn, "key.create", f"key:{row['id']}",
               after={"name": name, "scopes": row["scopes"], "expires_at": expires, "rate_per_min": row["rate_per_min"]})
    typer.echo(f"已创建 created key {row['id']} ({', '.join(row['scopes'])}; {row['rate_per_min']}/min"
               + (f"; expires {expires:%Y-%m-%d}" if expires else "") + ")")
    typer.echo(f"密钥（仅显示一次）key (shown once): {plain}")


@key_app.command("list")
def list_() -> None:
    """列出密钥（不含密钥本身） list keys (never the keys themselves)."""
    from datetime import UTC, datetime

    from gis_api.auth import store
    from gis_api.commands.user import _engine

    now = datetime.now(UTC)
    with _engine().connect() as conn:
        rows = store.list_api_keys(conn)
    for k in rows:
        if k["revoked_at"]:
            state = "已撤销 revoked"
        elif k["expires_at"] and k["expires_at"] <= now:
            state = "已过期 expired"
        else:
            state = "有效 active"
        exp = f"{k['expires_at']:%Y-%m-%d}" if k["expires_at"] else "-"
        typer.echo(f"{k['id']}\t{state}\t{k['name']}\t{','.join(k['scopes'])}\t{k['rate_per_min']}/min\t{exp}")


@key_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="密钥编号 key id (the part after sk_)")) -> None:
    """撤销密钥 revoke a key (it stops working at once)."""
    from gis_api.auth import store
    from gis_api.commands.user import _audit, _engine

    with _engine().begin() as conn:
        changed = store.revoke_api_key(conn, key_id)
        if changed:
            _audit(conn, "key.revoke", f"key:{key_id}")
    typer.echo(("已撤销 revoked: " if changed else "早已撤销 already revoked: ") + key_id)


def register(app: typer.Typer) -> None:
    """Add ``shequ key``."""
    app.add_typer(key_app, name="key")
