"""The owner's credential in the gateway: pasted in the page, restored at start, renewed on time.

All workspace calls run in threads; one lock orders a paste against a renewal, so two tokens are
never installed at once. The state is what GET /api/credentials shows (never the token itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from services import identity, redact
from services.config import Settings
from services.credentials import backup, profile, store
from services.credentials.owner import TokenRefused, token_user
from services.credentials.store import StoredToken
from services.databricks import (
    DEFAULT_TIMEOUT_SECONDS,
    Owner,
    WorkspaceUnavailable,
    describe_error,
    pat_client,
)
from services.platform_log import announce, resolved

log = logging.getLogger("credentials")
PLATFORM_LOG_KEY = "owner-credential"
RETRY_SECONDS = 30.0  # a renewal the workspace did not answer is retried this often
# A token of unknown expiry (pasted where the app may not mint its own) is checked this often, so one
# that stopped working turns the panel red rather than failing the CLI and the sync silently.
CHECK_SECONDS = 300.0


class Refused(Exception):
    """A pasted token the app will not use; `status` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refusal(exc: BaseException) -> bool:
    """True when the workspace said no (revoked, expired, forbidden, bad lifetime), as opposed to not
    answering: a refusal asks the owner again, silence is retried."""
    from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied, Unauthenticated

    return isinstance(exc, Unauthenticated | PermissionDenied | BadRequest | NotFound)


class CredentialManager:
    def __init__(
        self,
        settings: Settings,
        owner: Callable[[], Owner | None],
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.settings = settings
        self._owner = owner
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._checked_at = time.time()
        self.state = "deploy-token" if settings.databricks_token else "starting"
        self.reason = ""  # why the page asks (again); shown in red
        self.note = ""  # a warning while connected
        self.kept = False  # the current token is in the app's secret: it survives a restart
        self.backup_error = ""  # why it is not (the page shows it)
        self._retry_at: float | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # Run each time the owner's token becomes usable (restored at start, or pasted): what waited
        # for it catches up (the gateway: agents whose MLflow tracing needs the owner).
        self.on_connected: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._followups: set[asyncio.Task[None]] = set()

    # -- what the page sees ------------------------------------------------------------------------

    def renew_at(self, stored: StoredToken) -> float | None:
        if not stored.renewable or stored.expires_at is None:
            return None
        return stored.expires_at - self.settings.token_margin_seconds

    def status(self) -> dict[str, Any]:
        owner = self._owner()
        stored = None if self.settings.databricks_token else store.load(self.settings)
        connected = self.state in ("connected", "deploy-token") or (self.state == "refused" and stored)
        return {
            "state": self.state,
            "source": "DATABRICKS_TOKEN"
            if self.settings.databricks_token
            else (stored.source if stored else ""),
            "minted_by_app": bool(stored and stored.minted),
            "expires_at": stored.expires_at if stored else None,
            "renews_at": self.renew_at(stored) if stored and self.state == "connected" else None,
            "lifetime_seconds": self.settings.token_lifetime_seconds,
            "margin_seconds": self.settings.token_margin_seconds,
            "in_use": bool(connected),
            "reason": self.reason,
            "note": self.note,
            "kept_across_restarts": self.kept,
            "backup_error": self.backup_error,
            "owner": owner.to_json() if owner else None,
        }

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Restore the kept token, then renew it before it expires, until cancelled."""
        if self.settings.databricks_token:
            return  # the deploy's PAT: not ours to renew
        await self._start()
        while True:
            wake = self._next_wake()
            self._wake.clear()
            timeout = None if wake is None else max(0.0, wake - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            try:
                await self._tick()
            except Exception:  # a bug here must not stop renewals for good
                log.exception("renewing the owner's token failed unexpectedly")
                self._retry_at = time.time() + self._retry_seconds

    def _next_wake(self) -> float | None:
        stored = store.load(self.settings)
        if stored is None:
            return None
        check = self._checked_at + self._check_seconds if stored.expires_at is None else None
        times = [
            t for t in (self.renew_at(stored), stored.expires_at, self._retry_at, check) if t is not None
        ]
        return min(times) if times else None

    async def _owner_known(self) -> Owner:
        # The owner resolver has no event to wait on; its lookup retries within seconds.
        while (owner := self._owner()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return owner

    async def _start(self) -> None:
        # The owner lookup imports databricks-sdk in its thread; importing it from a second thread at
        # the same time can deadlock on the SDK's circular imports, so wait for the owner first.
        owner = await self._owner_known()
        async with self._lock:
            stored = store.load(self.settings)
            if stored is None:
                self.state = "restoring"
                try:
                    stored = await asyncio.to_thread(backup.fetch, self.settings, self._timeout)
                except backup.BackupFailed as exc:
                    self._ask(f"the token kept before the restart could not be read back: {exc}")
                    return
                if stored is None:
                    await asyncio.to_thread(self._probe_backup)
                    self._ask(
                        f"the app cannot keep your token across restarts, so it asks again after each "
                        f"one: {self.backup_error}"
                        if self.backup_error
                        else ""
                    )
                    return
                if stored.expired():
                    self._ask("the token kept before the restart has expired; paste a new one")
                    return
                try:
                    user = await asyncio.to_thread(token_user, self.settings, stored.token, self._timeout)
                except (TokenRefused, WorkspaceUnavailable) as exc:
                    self._ask(f"the token kept before the restart no longer works: {exc}")
                    return
                if user.email.lower() != owner.key:
                    self._ask(f"the token kept before the restart belongs to {user.email}, not the owner")
                    return
                stored = dataclasses.replace(stored, source="restored", saved_at=time.time())
                await asyncio.to_thread(self._install, stored, user.display_name, user.email)
                log.info("restored the owner's token kept before the restart")
            else:
                await asyncio.to_thread(profile.write_profile, self.settings, stored.token)
                await asyncio.to_thread(self._keep, stored)
            self.state, self.reason = "connected", ""
            self._connected()
            if stored.minted and not stored.renewable:  # refused before this process restarted
                self._refused("the workspace refused to renew the token; paste a new one before it expires")

    def _connected(self) -> None:
        if self.on_connected is None:
            return
        task = asyncio.create_task(self.on_connected())
        self._followups.add(task)  # a strong reference until it ends
        task.add_done_callback(self._followups.discard)

    def _ask(self, reason: str) -> None:
        self.state, self.reason = "missing", reason
        announce(
            f"the workspace is not connected{': ' + reason if reason else ''}",
            "open the app and paste a personal access token in 'Connect your workspace'",
            key=PLATFORM_LOG_KEY,
        )

    # -- connect -----------------------------------------------------------------------------------

    async def connect(self, token: str) -> dict[str, Any]:
        """Check `token` is the owner's, then mint the app's own short-lived one with it and use that."""
        if self.settings.databricks_token:
            raise Refused(
                409, "the app uses the DATABRICKS_TOKEN of its deploy; remove that secret resource first"
            )
        if not self.settings.databricks_host:
            raise Refused(409, "DATABRICKS_HOST is not set: there is no workspace to connect")
        redact.hide(token)
        owner = self._owner()
        if owner is None:
            raise Refused(503, "the app's owner is not known yet; try again in a moment")
        async with self._lock:
            try:
                user = await asyncio.to_thread(token_user, self.settings, token, self._timeout)
            except TokenRefused as exc:
                raise Refused(400, str(exc)) from None
            except WorkspaceUnavailable as exc:
                raise Refused(503, str(exc)) from None
            if user.email.lower() != owner.key:
                log.warning("refused a token of %s (the owner is %s)", user.email, owner.email)
                raise Refused(
                    403,
                    f"this token belongs to {user.display_name} ({user.email}), not to the app's owner "
                    f"{owner.email}: paste a token of your own",
                )
            self.note = ""
            try:
                stored = await asyncio.to_thread(self._mint, token, "pasted")
            except Exception as exc:
                # Tokens may not be minted here (an admin forbade it): use the pasted one as it is.
                stored = StoredToken(token, "pasted", renewable=False, saved_at=time.time())
                self.note = (
                    f"the workspace would not mint a renewal ({describe_error(exc)}): your token is used "
                    "as it is, and the page asks again once it stops working"
                )
            previous = store.load(self.settings)
            await asyncio.to_thread(self._install, stored, user.display_name, user.email)
            if previous is not None and previous.minted and previous.token != stored.token:
                await asyncio.to_thread(self._revoke, stored.token, previous)
            self.state, self.reason, self._retry_at = "connected", "", None
            self._connected()
            self._checked_at = time.time()
            log.info("the owner's workspace credential is connected (%s)", stored.source)
            resolved(PLATFORM_LOG_KEY, f"the workspace is connected as {user.email}")
        self._wake.set()
        return self.status()

    # -- renewal -----------------------------------------------------------------------------------

    async def _tick(self) -> None:
        async with self._lock:
            stored = store.load(self.settings)
            if stored is None:
                return
            now = time.time()
            if stored.expired(now):
                await asyncio.to_thread(self._drop)
                self._refused("the token expired before it could be renewed; paste a new one")
                return
            if stored.expires_at is None and now >= self._checked_at + self._check_seconds:
                await self._check(stored)
                return
            renew_at = self.renew_at(stored)
            if renew_at is None or now < renew_at or (self._retry_at is not None and now < self._retry_at):
                return
            try:
                fresh = await asyncio.to_thread(self._mint, stored.token, "renewed")
            except Exception as exc:
                from databricks.sdk.errors import Unauthenticated

                reason = describe_error(exc)
                if isinstance(exc, Unauthenticated):
                    await asyncio.to_thread(self._drop)  # revoked or expired: useless from now on
                    self._refused(f"the workspace refused the token (revoked or expired?): {reason}")
                elif _refusal(exc):
                    # Still valid until it expires: keep it that long, but ask for a new one now.
                    store.save(self.settings, dataclasses.replace(stored, renewable=False))
                    self._refused(f"the workspace refused to renew the token: {reason}")
                else:
                    self._retry_at = now + self._retry_seconds
                    self.note = f"renewing the token failed ({reason}); retrying in {self._retry_seconds:g} s"
                    log.warning("%s", self.note)
                return
            await asyncio.to_thread(self._install, fresh, "", "")
            await asyncio.to_thread(self._revoke, fresh.token, stored)
            self._retry_at, self.note = None, ""
            log.info("renewed the owner's token; the next renewal is due in %.0f s", self._due(fresh))

    async def _check(self, stored: StoredToken) -> None:
        """Does a token of unknown expiry still work? Silence is not an answer: checked again later."""
        self._checked_at = time.time()
        try:
            await asyncio.to_thread(token_user, self.settings, stored.token, self._timeout)
        except TokenRefused as exc:
            await asyncio.to_thread(self._drop)
            self._refused(f"the token you pasted no longer works ({exc}); paste a new one")
        except WorkspaceUnavailable as exc:
            log.warning("could not check the owner's token: %s", exc)

    def _due(self, stored: StoredToken) -> float:
        renew_at = self.renew_at(stored)
        return 0.0 if renew_at is None else max(0.0, renew_at - time.time())

    def _refused(self, reason: str) -> None:
        self.state, self.reason = "refused", reason
        announce(
            f"the owner's workspace token: {reason}",
            "open the app and paste a new personal access token in 'Connect your workspace'",
            key=PLATFORM_LOG_KEY,
        )

    # -- blocking helpers (threads) ----------------------------------------------------------------

    def _mint(self, token: str, source: str) -> StoredToken:
        lifetime = self.settings.token_lifetime_seconds
        client = pat_client(self.settings.databricks_host, token, self._timeout)
        created = client.tokens.create(
            lifetime_seconds=lifetime,
            comment=f"coding-agents app {self.settings.app_name or ''}: renewed automatically".strip(),
        )
        value = created.token_value or ""
        info = created.token_info
        if not value or info is None or not info.token_id:
            raise WorkspaceUnavailable("the workspace answered token/create without a token")
        redact.hide(value)
        now = time.time()
        expiry = info.expiry_time / 1000 if info.expiry_time and info.expiry_time > 0 else now + lifetime
        return StoredToken(value, source, token_id=info.token_id, expires_at=expiry, saved_at=now)

    def _install(self, stored: StoredToken, name: str, email: str) -> None:
        """Disk first, then the profile (atomic), then the restart copy: each reader sees a working
        token at every instant."""
        store.save(self.settings, stored)
        profile.write_profile(self.settings, stored.token)
        if email:
            identity.git_identity(self.settings.home, name or email, email)
        self._keep(stored)

    def _keep(self, stored: StoredToken) -> None:
        try:
            backup.keep(self.settings, stored, self._timeout)
            self.kept, self.backup_error = True, ""
        except backup.BackupFailed as exc:
            self.kept, self.backup_error = False, str(exc)
            log.warning("the owner's token will not survive a restart: %s", exc)

    def _probe_backup(self) -> None:
        try:
            backup.ensure_scope(self.settings, self._timeout)
        except backup.BackupFailed as exc:
            self.backup_error = str(exc)

    def _revoke(self, current: str, old: StoredToken) -> None:
        """Delete `old` if the app minted it (never a token the owner made)."""
        if not old.minted:
            return
        try:
            pat_client(self.settings.databricks_host, current, self._timeout).tokens.delete(old.token_id)
        except Exception as exc:  # it expires on its own soon; say so and move on
            log.warning("could not revoke the replaced token %s: %s", old.token_id, describe_error(exc))

    def _drop(self) -> None:
        store.clear(self.settings)
        profile.drop_profile_token(self.settings)
