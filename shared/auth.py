"""API keys: generated once, shown once, stored as a hash; looked up by every HTTP service.

A request looks its key up in the database (one unique-index lookup), so `radar keys revoke` takes effect at the
next request in every process. The one exception is ingest's intake routes, whose every request runs a claim
statement that checks the key is not revoked anyway (services/ingest/adapters/dedupe_store.py): they may take the key's
unchanging facts (id, name, scopes, rate limit) from a cache (`cached=True`) and save the lookup; revocation still
stops them at once. A key with a rate limit is throttled with GCRA on a single column all processes advance
atomically, so the limit holds however many ingest processes share the traffic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy import Float, bindparam, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import ApiKey, affected_rows
from shared.schemas import utcnow

KEY_PREFIX = "rdr_"
ALL_SCOPES = ("events", "accounts", "read")
RATE_WINDOW_S = 60.0  # rate limits are per minute; a key may use a whole minute's allowance in one burst


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    key_hash: str
    display_prefix: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(plaintext, hash_key(plaintext), plaintext[:12])


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None = None


def gcra_retry_after(tat: float | None, now: float, per_minute: int) -> float:
    """Seconds until a key at theoretical arrival time `tat` may send again (0 = now); pure, for tests and the 429."""
    interval = RATE_WINDOW_S / per_minute
    start = max(tat or now, now)
    return max(0.0, start + interval - now - RATE_WINDOW_S)


class KeyStore:
    _LOOKUP = select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.rate_limit_per_minute).where(
        ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None)
    )

    CACHE_SIZE = 10_000

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine = sessions.kw["bind"]
        self._cache: dict[str, Principal] = {}  # digest -> principal; only valid keys, only for callers that recheck

    async def create(self, name: str, scopes: list[str] | None = None, rate_limit_per_minute: int | None = None) -> NewKey:
        key = generate_key()
        async with self._sessions.begin() as session:
            session.add(
                ApiKey(
                    name=name,
                    key_hash=key.key_hash,
                    key_prefix=key.display_prefix,
                    scopes=list(scopes or ALL_SCOPES),
                    rate_limit_per_minute=rate_limit_per_minute or None,
                )
            )
        return key

    async def list(self) -> list[ApiKey]:
        async with self._sessions() as session:
            return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())

    async def revoke(self, name_or_prefix: str) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ApiKey)
                .where((ApiKey.name == name_or_prefix) | (ApiKey.key_prefix == name_or_prefix))
                .where(ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return affected_rows(result)

    async def authenticate(self, plaintext: str, cached: bool = False) -> Principal | None:
        """One indexed lookup on a plain connection (no ORM session): the per-request price of instant revocation.
        With `cached`, a key found before is not looked up again: only for callers that recheck revocation in
        the statement that does their work. Unknown keys are never cached, so a new key works at once."""
        digest = hash_key(plaintext)
        if cached and (known := self._cache.get(digest)) is not None:
            return known
        async with self._engine.connect() as connection:
            row = (await connection.execute(self._LOOKUP, {"digest": digest})).first()
        if row is None:
            return None
        principal = Principal(row.id, row.name, frozenset(row.scopes or ()), row.rate_limit_per_minute)
        if cached:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[digest] = principal
        return principal

    def forget(self, key_id: int) -> None:
        """A caller found the key revoked: the next request looks it up (and is refused)."""
        for digest in [digest for digest, principal in self._cache.items() if principal.key_id == key_id]:
            del self._cache[digest]

    async def throttle(self, principal: Principal) -> float:
        """Take one request from the key's allowance; 0 when allowed, else the seconds to wait."""
        per_minute = principal.rate_limit_per_minute
        if not per_minute:
            return 0.0
        now = time.time()
        interval = RATE_WINDOW_S / per_minute
        start = case((ApiKey.rate_tat > literal(now, Float), ApiKey.rate_tat), else_=literal(now, Float))
        async with self._sessions.begin() as session:
            taken = await session.execute(
                update(ApiKey)
                .where(ApiKey.id == principal.key_id, start + interval - now <= RATE_WINDOW_S)
                .values(rate_tat=start + interval)
                .returning(ApiKey.id)
            )
            if taken.first() is not None:
                return 0.0
            tat = await session.scalar(select(ApiKey.rate_tat).where(ApiKey.id == principal.key_id))
        return max(gcra_retry_after(tat, now, per_minute), 0.001)


def credentials(request: Request, allow_basic: bool = False) -> str | None:
    """`Authorization: Bearer <key>`; with `allow_basic`, also Segment's Basic auth (the key as user name)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not token:
        return None
    if scheme.lower() == "bearer":
        return token
    if allow_basic and scheme.lower() == "basic":
        try:
            user, _, _password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


def bearer_token(request: Request) -> str | None:
    return credentials(request)


def unauthorized(detail: str, allow_basic: bool = False) -> HTTPException:
    challenge = 'Bearer realm="radar", Basic realm="radar"' if allow_basic else 'Bearer realm="radar"'
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


async def require_scope(
    request: Request,
    keys: KeyStore,
    scope: str | Iterable[str],
    *,
    allow_basic: bool = False,
    token: str | None = None,
    cached: bool = False,
) -> Principal:
    """401 without a valid key, 403 without one of the scopes, 429 (with Retry-After) past the key's rate limit.
    `cached` only for routes whose work rechecks revocation (KeyStore.authenticate)."""
    wanted = (scope,) if isinstance(scope, str) else tuple(scope)
    token = token or credentials(request, allow_basic)
    if token is None:
        how = "'Authorization: Bearer <key>' (or Basic auth with the key as user name)" if allow_basic else "'Authorization: Bearer <key>'"
        raise unauthorized(f"missing {how} header", allow_basic)
    principal = await keys.authenticate(token, cached=cached)
    if principal is None:
        raise unauthorized("unknown or revoked API key", allow_basic)
    if not principal.scopes.intersection(wanted):
        needed = " or ".join(f"'{name}'" for name in wanted)
        raise HTTPException(status_code=403, detail=f"this key lacks the {needed} scope")
    wait_s = await keys.throttle(principal)
    if wait_s > 0:
        raise HTTPException(
            status_code=429,
            detail=f"key '{principal.name}' is over its limit of {principal.rate_limit_per_minute} requests a minute",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
    return principal
