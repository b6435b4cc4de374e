"""Who may use the gateway: access policies checked on every route but /health.

Local mode (LocalTokenPolicy): a bearer token, exchanged once for a signed cookie. Databricks Apps
mode (AppsOwnerPolicy): the proxy's identity header, owner only. Every policy fails closed: an
exception anywhere in a check means no access.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest

from services.gateway.owner import OwnerResolver

LOCAL_HOSTNAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Principal:
    """The authenticated requester; `user` is what the session cookie is bound to.

    `fresh` marks an identity proven by this very request (not by the cookie), so the cookie can be
    (re)issued.
    """

    user: str
    fresh: bool = False


class Denied(Exception):
    """Access refused; `status` is the HTTP status, `message` is safe to show the requester."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def split_host(host_header: str) -> str:
    """Hostname of a Host/Origin netloc, lower-cased, without port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bearer_token(request: HTTPServerRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class AccessPolicy(ABC):
    cookie_name: str
    secure_cookie: bool = False
    cookie_max_age_days: int = 30
    accepts_query_token: bool = False

    @abstractmethod
    def check_host(self, request: HTTPServerRequest) -> None:
        """Raise Denied unless the Host header names this app (DNS-rebinding defence)."""

    @abstractmethod
    def authenticate(self, request: HTTPServerRequest, cookie_user: str | None) -> Principal:
        """The principal behind the request, or Denied. `cookie_user` is the verified cookie value."""

    @abstractmethod
    def login_with_query_token(self, token: str) -> Principal:
        """Exchange a `?token=` from the start URL for a principal, or Denied."""

    def public_host(self, request: HTTPServerRequest) -> str:
        """The host the browser used, which a same-site Origin must match."""
        return request.host

    def check_origin(self, request: HTTPServerRequest) -> None:
        """Refuse cross-site requests: an Origin, when present, must be this site."""
        origin = request.headers.get("Origin")
        if origin is None:
            return
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Denied(403, "cross-origin request refused")
        if parts.netloc.lower() != self.public_host(request).lower():
            raise Denied(403, f"cross-origin request from {origin[:100]} refused")


class LocalTokenPolicy(AccessPolicy):
    """Local mode: loopback only, one shared secret token."""

    def __init__(self, token: str, port: int, extra_hosts: tuple[str, ...] = ()) -> None:
        self._token = token
        # A fingerprint, not the token, goes in the cookie so a leaked cookie never reveals it,
        # and a changed token invalidates every old cookie.
        self._fingerprint = "local:" + hashlib.sha256(token.encode()).hexdigest()[:24]
        self._hosts = {*LOCAL_HOSTNAMES, *extra_hosts}
        # Cookies ignore ports: name them per port so two copies on one machine do not collide.
        self.cookie_name = f"coding_agents_{port}"
        self.accepts_query_token = True

    def check_host(self, request: HTTPServerRequest) -> None:
        hostname = split_host(request.host)
        if hostname in self._hosts:
            return
        try:
            if ipaddress.ip_address(hostname).is_loopback:
                return
        except ValueError:
            pass
        raise Denied(403, f"host {hostname[:100]!r} is not allowed; open the app via 127.0.0.1")

    def _token_ok(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token.encode())

    def authenticate(self, request: HTTPServerRequest, cookie_user: str | None) -> Principal:
        token = bearer_token(request)
        if token is not None:
            if self._token_ok(token):
                return Principal(self._fingerprint)
            raise Denied(401, "invalid access token")
        if cookie_user is not None and hmac.compare_digest(cookie_user, self._fingerprint):
            return Principal(self._fingerprint)
        raise Denied(401, "missing access token: open the URL that scripts/run printed")

    def login_with_query_token(self, token: str) -> Principal:
        if self._token_ok(token):
            return Principal(self._fingerprint)
        raise Denied(401, "invalid access token")


class AppsOwnerPolicy(AccessPolicy):
    """Databricks Apps mode: the Apps proxy signs users in; only the app's owner gets through.

    Identity is the proxy's X-Forwarded-Email. A signed cookie bound to the owner covers requests
    the proxy forwards without identity headers (it has dropped them on WebSocket upgrades).
    """

    cookie_name = "coding_agents_session"
    secure_cookie = True  # TLS ends at the Apps proxy; the browser only ever sees https
    cookie_max_age_days = 1

    def __init__(self, resolver: OwnerResolver) -> None:
        self._resolver = resolver

    def check_host(self, request: HTTPServerRequest) -> None:
        # Only the Apps proxy reaches this port; its Host may be internal, so there is nothing to pin.
        return

    def public_host(self, request: HTTPServerRequest) -> str:
        # Each proxy on the way appends to X-Forwarded-Host, and the Apps proxy is the last hop before
        # us: only its (last) entry is trustworthy; earlier ones are whatever the client sent.
        return request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip() or request.host

    @staticmethod
    def binding(owner_key: str) -> str:
        """Cookie value: names the owner, so a changed owner invalidates every old cookie."""
        return "owner:" + owner_key

    def authenticate(self, request: HTTPServerRequest, cookie_user: str | None) -> Principal:
        owner = self._resolver.owner
        if owner is None:
            self._resolver.retry_now()
            reason = self._resolver.status.reason
            raise Denied(503, f"the app cannot tell who its owner is yet ({reason}); retrying")
        email = request.headers.get("X-Forwarded-Email", "").strip()
        if email:
            if email.lower() == owner.key:
                return Principal(self.binding(owner.key), fresh=True)
            raise Denied(403, f"this app belongs to {owner.email}, you are {email[:200]}")
        if cookie_user is not None and hmac.compare_digest(cookie_user, self.binding(owner.key)):
            return Principal(cookie_user)
        raise Denied(401, "no signed-in user: open this app through its Databricks Apps URL")

    def login_with_query_token(self, token: str) -> Principal:
        raise Denied(400, "access tokens are not used on Databricks Apps; open the app's URL")
