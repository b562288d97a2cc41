"""API tokens: made once (the caller shows the token to the admin, then it is
gone), checked on every call by hash, scoped, expiring and revocable."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from chatbot.api.models import ApiToken
from chatbot.api.problems import ApiProblem
from chatbot.audit.services import record

TOKEN_PREFIX = "nwc_"
# Each scope includes the ones below it: an admin token may also read and write.
SCOPE_LEVELS = {ApiToken.Scope.READ: 1, ApiToken.Scope.WRITE: 2, ApiToken.Scope.ADMIN: 3}
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_scopes(scopes: object) -> list[str]:
    if not isinstance(scopes, list | tuple) or not scopes:
        raise ValueError("Choose at least one scope: read, write or admin.")
    unknown = [s for s in scopes if s not in SCOPE_LEVELS]
    if unknown:
        raise ValueError(f"Unknown scope(s) {unknown}; use read, write or admin.")
    return sorted(set(scopes), key=SCOPE_LEVELS.__getitem__)


def create_token(*, name: str, user, scopes: list[str], expires_at=None, created_by=None) -> tuple[ApiToken, str]:
    """A new token row and the token itself, which is not stored anywhere."""
    scopes = check_scopes(scopes)
    with transaction.atomic():
        while True:
            prefix = secrets.token_hex(4)
            if not ApiToken.objects.filter(prefix=prefix).exists():
                break
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiToken.objects.create(
            name=name,
            user=user,
            prefix=prefix,
            token_hash=hash_token(token),
            scopes=scopes,
            expires_at=expires_at,
            created_by=created_by,
        )
        record(created_by, "api_token.create", row, user_id=user.pk, scopes=scopes)
    return row, token


def revoke(token_id: int, actor=None) -> bool:
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            record(actor, "api_token.revoke", ApiToken.objects.get(pk=token_id))
    return bool(revoked)


def verify(token: str) -> ApiToken:
    """The token's row, or an ApiProblem saying why it is refused."""
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0] if token.startswith(TOKEN_PREFIX) else ""
    row = ApiToken.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
    # Compare hashes in constant time; an unknown prefix is refused the same way as a wrong secret.
    if row is None or not hmac.compare_digest(row.token_hash, hash_token(token)):
        raise ApiProblem(401, "invalid_token", "The token is not valid.", headers={"WWW-Authenticate": "Bearer"})
    if row.revoked_at is not None:
        raise ApiProblem(401, "token_revoked", "The token was revoked.", headers={"WWW-Authenticate": "Bearer"})
    if row.is_expired:
        raise ApiProblem(401, "token_expired", "The token has expired.", headers={"WWW-Authenticate": "Bearer"})
    if not row.user.is_active:
        raise ApiProblem(401, "invalid_token", "The token's user is inactive.", headers={"WWW-Authenticate": "Bearer"})
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_PRECISION:
        # At most one write a minute per token, not one per call.
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def has_scope(row: ApiToken, needed: str) -> bool:
    return max((SCOPE_LEVELS.get(s, 0) for s in row.scopes), default=0) >= SCOPE_LEVELS[needed]
