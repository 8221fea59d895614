"""Accounts, roles, data classification, masking and the audit log.

Pure parts (roles, classification, masking, tokens, passwords, rate limits) take plain data and raise
`geo.errors` classes; `store.py` owns the SQL; `deps.py` holds the FastAPI dependencies for the wiring.

A city's unified identity platform (统一身份认证, an OpenID Connect provider) plugs in beside the password
login, not instead of the policy layer: a ``/auth/oidc/login`` route redirects to the provider
(authorization-code flow with PKCE, ``state`` and ``nonce`` kept in a short-lived signed cookie), and
``/auth/oidc/callback`` exchanges the code, validates the ID token against the provider's JWKS (issuer,
audience, expiry, nonce), maps the ``sub`` claim to an ``app_user`` row (a column ``external_subject``
unique per issuer; accounts are pre-provisioned by an admin or created on first login with no role
beyond ``public`` until granted), then calls `store.create_session` exactly as the password login does.
Roles and jurisdictions stay in ``app_user`` / ``user_grant`` (or are mapped from a provider claim by a
declared table), so `roles.can`, masking and the audit log work unchanged. Not implemented here.
"""
