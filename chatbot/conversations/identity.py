"""Who a visitor says they are. A name and email typed into the widget are claims,
shown to agents as unverified. An embedding site that knows its logged-in user
signs the identity (as Intercom's identity verification does):

    user_hash = HMAC-SHA256(IDENTITY_VERIFICATION_SECRET, f"{user_id}:{email}").hexdigest()

computed on the site's server; a correct one marks the visitor verified, and after
that the identity can only be changed by another signed one."""

import hashlib
import hmac

from django.conf import settings

from chatbot.conversations.models import Visitor


class IdentityRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sign(user_id: str, email: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{user_id}:{email}".encode(), hashlib.sha256).hexdigest()


def verified_fields(visitor_id: int, email: str | None, user_id: object, user_hash: object) -> dict:
    """The Visitor fields that say whether this identify frame is verified; refuses
    a bad signature, and an unsigned change to an identity that was signed."""
    if user_id is None and user_hash is None:
        if Visitor.objects.filter(pk=visitor_id, identity_verified=True).exists():
            raise IdentityRefused("identity_verified", "This identity was verified by the site; send a signed one.")
        return {"identity_verified": False}
    secret = settings.IDENTITY_VERIFICATION_SECRET
    if not secret:
        raise IdentityRefused("identity_verification_off", "This server does not verify identities.")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 200 or not isinstance(user_hash, str):
        raise IdentityRefused("invalid_identity", "user_id and user_hash must both be text.")
    if not hmac.compare_digest(sign(user_id, email or "", secret), user_hash.lower()):
        raise IdentityRefused("invalid_identity_signature", "The identity's signature does not match.")
    return {"identity_verified": True, "external_id": user_id}
