"""Schemathesis hooks for scripts/fuzz (loaded through SCHEMATHESIS_HOOKS).

Authenticates every generated request as one Agora account (a user's or the
admin's) and keeps that account's token valid while the fuzzer changes it:

- POST /api/users/logout revokes the presented token;
- PUT /api/users/profile with a `password` revokes every token of the account,
  and with an `email` changes the login.

After such a 2xx answer the token is dropped and the account logs in again
(with the password and email the fuzzer just set) before the next request, so
no later request fails with a 401 that the fuzzer itself caused. The current
credentials are written to AGORA_FUZZ_STATE so scripts/fuzz can put the
admin's original ones back at the end.

Environment (set by scripts/fuzz): AGORA_FUZZ_BASE_URL, AGORA_FUZZ_ROLE
(user|admin), AGORA_FUZZ_EMAIL, AGORA_FUZZ_PASSWORD, AGORA_FUZZ_TOKEN,
AGORA_FUZZ_STATE (a JSON file), and optionally AGORA_FUZZ_UNWRAP=1.

AGORA_FUZZ_UNWRAP=1 is a diagnostic: it replaces every 2xx body
`{"success": true, "data": X, ...}` by X before the checks see it, so the
response schemas are checked against what the document describes today and
the mismatches hidden behind the envelope show up.
"""

from __future__ import annotations

import json
import os
import threading
import uuid

import requests
import schemathesis

BASE_URL = os.environ["AGORA_FUZZ_BASE_URL"].rstrip("/")
ROLE = os.environ.get("AGORA_FUZZ_ROLE", "user")
STATE_FILE = os.environ.get("AGORA_FUZZ_STATE")
UNWRAP = os.environ.get("AGORA_FUZZ_UNWRAP") == "1"
TIMEOUT = 30


class Account:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.email = os.environ["AGORA_FUZZ_EMAIL"]
        self.password = os.environ["AGORA_FUZZ_PASSWORD"]
        self.token: str | None = os.environ.get("AGORA_FUZZ_TOKEN") or None
        self.logins = 0
        self.registrations = 0
        # Tokens this account has held, and 401s answered to one of them while it was
        # believed valid (a harness problem, not a finding, when not 0).
        self.issued: set[str] = {self.token} if self.token else set()
        self.own_token_401s: list[str] = []
        self.save()

    def save(self) -> None:
        if STATE_FILE:
            tmp = STATE_FILE + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(
                    {"role": ROLE, "email": self.email, "password": self.password,
                     "logins": self.logins, "registrations": self.registrations,
                     "own_token_401s": self.own_token_401s[:20]},
                    f,
                )
            os.replace(tmp, STATE_FILE)

    def current_token(self) -> str:
        with self.lock:
            if self.token is None:
                self.token = self._login() or self._register_fresh_user()
                self.issued.add(self.token)
                self.save()
            return self.token

    def _login(self) -> str | None:
        self.logins += 1
        r = requests.post(f"{BASE_URL}/api/users/login", json={"email": self.email, "password": self.password},
                          timeout=TIMEOUT)
        if r.status_code == 200:
            return r.json()["data"]["token"]
        if ROLE == "admin":
            raise RuntimeError(f"admin login as {self.email} failed: {r.status_code} {r.text[:200]}")
        return None

    def _register_fresh_user(self) -> str:
        # A user account whose credentials were lost: carry on as a new user.
        self.registrations += 1
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        password = "fuzz-" + uuid.uuid4().hex
        r = requests.post(f"{BASE_URL}/api/users/register",
                          json={"name": "Fuzz", "email": email, "password": password}, timeout=TIMEOUT)
        if r.status_code != 201:
            raise RuntimeError(f"registering a fresh fuzz user failed: {r.status_code} {r.text[:200]}")
        self.email, self.password = email, password
        return r.json()["data"]["token"]

    def observe(self, method: str, path: str, sent_token: str | None, sent_body: object, response) -> None:
        status = response.status_code
        if path in ("/api/users/login", "/api/users/register"):
            return  # no token involved: a 401 there is about the credentials in the body
        with self.lock:
            if sent_token is None or sent_token not in self.issued:
                return
            if sent_token != self.token:
                # A request re-sent with a token we had already dropped (revoked).
                if status == 401:
                    self.own_token_401s.append(f"stale token: {method} {path}")
                    self.save()
                return
            if status == 401:
                self.own_token_401s.append(f"{method} {path}: {response.content[:120]!r}")
                self.save()
            if 200 <= status < 300 and method == "POST" and path == "/api/users/logout":
                self.token = None
            elif 200 <= status < 300 and method == "PUT" and path == "/api/users/profile" and isinstance(sent_body, dict):
                if "email" in sent_body:
                    email = None
                    try:
                        data = response.json()
                        email = (data.get("data") or data).get("email") if isinstance(data, dict) else None
                    except Exception:
                        pass
                    if not isinstance(email, str) and isinstance(sent_body["email"], str):
                        email = sent_body["email"].strip().lower()
                    if isinstance(email, str):
                        self.email = email
                if "password" in sent_body and isinstance(sent_body["password"], str):
                    self.password = sent_body["password"]
                    self.token = None
                self.save()
            elif status == 401:
                # Our own, supposedly valid token was refused: log in again before
                # the next request (the 401 itself is reported by the checks).
                self.token = None


ACCOUNT = Account()


@schemathesis.auth(refresh_interval=None, retry_on=[])
class AgoraBearer:
    def get(self, case, context):
        return ACCOUNT.current_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _sent_token(request) -> str | None:
    value = request.headers.get("Authorization") if request is not None else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str) and value.startswith("Bearer "):
        return value[len("Bearer "):]
    return None


def _sent_body(request) -> object:
    body = getattr(request, "body", None)
    if body is None:
        return None
    try:
        return json.loads(body)
    except Exception:
        return None


def _unwrap(response) -> None:
    from schemathesis.core import NOT_SET

    if not 200 <= response.status_code < 300:
        return
    try:
        body = json.loads(response.content)
    except Exception:
        return
    if isinstance(body, dict) and body.get("success") is True and "data" in body:
        response.content = json.dumps(body["data"]).encode()
        response.content_size = len(response.content)
        response._deserialized = NOT_SET
        response._encoded_body = None


@schemathesis.hook
def after_call(context, case, response):
    op = case.operation
    ACCOUNT.observe(op.method.upper(), op.path, _sent_token(response.request), _sent_body(response.request), response)
    if UNWRAP:
        _unwrap(response)
