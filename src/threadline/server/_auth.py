"""API keys → tenants, and how a tenant's conversation ids map onto session ids.

``Authorization: Bearer KEY`` is compared with every configured key in constant time (each
key is compared, whatever matched before). A key maps to a tenant name or to ``None``: the
no-tenant key sees the store as it is, conversation id = session id. A tenant ``acme`` sees
only the sessions whose id starts with ``acme:``: its conversation ``conv_1`` is the session
``acme:conv_1`` (a colon: tenant names hold none, and a URL needs no escaping for it), and an
id of another tenant is simply not found (404, never 403).
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ._errors import ApiError

__all__ = ["Auth", "Tenant", "check_tenant_name", "load_keys_file"]

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_tenant_name(name: object) -> str | None:
    """``name`` as a tenant (1-64 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit),
    or ``None`` for the no-tenant key; anything else is a :class:`UserError`."""
    if name is None:
        return None
    if not isinstance(name, str) or not _TENANT.fullmatch(name):
        raise UserError(
            f"a tenant name must be 1-64 letters, digits, '_', '.' or '-' (starting with a "
            f"letter or digit), or null for a key that sees every session; got {name!r}"
        )
    return name


@dataclass(frozen=True)
class Tenant:
    """Who a request comes from: ``name`` (``None``: no tenant, ids are session ids)."""

    name: str | None = None

    @property
    def prefix(self) -> str:
        """What this tenant's session ids start with (``""`` without a tenant)."""
        return "" if self.name is None else f"{self.name}:"

    def session_id(self, visible_id: str) -> str:
        """The session id of the tenant's conversation ``visible_id``."""
        return self.prefix + visible_id

    def visible_id(self, session_id: str) -> str | None:
        """The conversation id the tenant knows ``session_id`` by, or ``None`` when the
        session is not the tenant's."""
        prefix = self.prefix
        if not session_id.startswith(prefix) or len(session_id) == len(prefix):
            return None
        return session_id[len(prefix) :]


class Auth:
    """The configured API keys; no keys at all means no authentication (loopback only)."""

    def __init__(self, keys: Mapping[str, str | None] | None = None) -> None:
        checked: list[tuple[bytes, Tenant]] = []
        for key, tenant in (keys or {}).items():
            if not isinstance(key, str) or len(key) < 8 or not key.isprintable() or " " in key:
                raise UserError(
                    "an API key must be a printable string of at least 8 characters without spaces"
                )
            checked.append((key.encode("utf-8"), Tenant(check_tenant_name(tenant))))
        self._keys = checked

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._keys)

    @property
    def secrets(self) -> list[str]:
        """The keys, to scrub from any message."""
        return [key.decode("utf-8") for key, _ in self._keys]

    def tenant_for(self, authorization: str | None) -> Tenant:
        """The tenant of a request's ``Authorization`` header, or a 401 :class:`ApiError`."""
        if not self._keys:
            return Tenant()
        given = b""
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer":
                given = token.strip().encode("utf-8", "replace")
        found: Tenant | None = None
        for key, tenant in self._keys:
            if hmac.compare_digest(key, given) and found is None:
                found = tenant
        if found is None:
            message = (
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
                if not given
                else "Incorrect API key provided."
            )
            raise ApiError(401, message, code="invalid_api_key")
        return found


def load_keys_file(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """The keys of a keys file: a JSON object mapping each API key to its tenant name (or
    ``null`` for a key that sees every session)."""
    where = Path(path)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read the keys file {str(where)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"the keys file {str(where)!r} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise UserError(
            f"the keys file {str(where)!r} must be a JSON object mapping each API key to a "
            'tenant name, e.g. {"sk-key-for-acme": "acme"}'
        )
    for tenant in data.values():
        check_tenant_name(tenant)
    return {str(key): tenant for key, tenant in data.items()}
