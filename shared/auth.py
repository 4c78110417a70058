"""API keys: generated once, shown once, stored as a hash; looked up by every HTTP service."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import ApiKey
from shared.schemas import utcnow

KEY_PREFIX = "rdr_"
ALL_SCOPES = ("events", "accounts", "read")


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


class KeyStore:
    """Caches hits briefly so a busy ingest does not query the database on every request."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_ttl_s: float = 5.0) -> None:
        self._sessions = sessions
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def create(self, name: str, scopes: list[str] | None = None) -> NewKey:
        key = generate_key()
        async with self._sessions.begin() as session:
            session.add(ApiKey(name=name, key_hash=key.key_hash, key_prefix=key.display_prefix, scopes=list(scopes or ALL_SCOPES)))
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
        self._cache.clear()
        return result.rowcount or 0

    async def authenticate(self, plaintext: str) -> Principal | None:
        digest = hash_key(plaintext)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)))
        if row is None:
            self._cache.pop(digest, None)
            return None
        principal = Principal(row.id, row.name, frozenset(row.scopes))
        self._cache[digest] = (now, principal)
        return principal


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="radar"'})


async def require_scope(request: Request, keys: KeyStore, scope: str) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing 'Authorization: Bearer <key>' header")
    principal = await keys.authenticate(token)
    if principal is None:
        raise unauthorized("unknown or revoked API key")
    if scope not in principal.scopes:
        raise HTTPException(status_code=403, detail=f"this key lacks the '{scope}' scope")
    return principal
