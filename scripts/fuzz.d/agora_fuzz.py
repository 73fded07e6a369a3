"""Helpers of scripts/fuzz, run with the fuzz venv's Python.

    agora_fuzz.py register BASE_URL            -> prints EMAIL PASSWORD TOKEN (a fresh user)
    agora_fuzz.py login BASE_URL EMAIL PASSWORD -> prints TOKEN
    agora_fuzz.py restore BASE_URL STATE_JSON EMAIL PASSWORD
        puts the account's original email and password back if the fuzzer changed them
    agora_fuzz.py summarize LABEL NDJSON [LABEL NDJSON ...]
        one line per distinct finding: operation, check, status, a minimal request, a body excerpt
"""

from __future__ import annotations

import json
import sys
import uuid

import requests

TIMEOUT = 30


def _fail(message: str) -> None:
    print(f"scripts/fuzz: {message}", file=sys.stderr)
    sys.exit(2)


def _token(r: requests.Response, what: str) -> str:
    try:
        return r.json()["data"]["token"]
    except Exception:
        _fail(f"{what}: unexpected answer {r.status_code}: {r.text[:300]}")
        raise


def register(base: str) -> None:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    password = "fuzz-" + uuid.uuid4().hex
    r = requests.post(f"{base}/api/users/register", json={"name": "Fuzz User", "email": email, "password": password},
                      timeout=TIMEOUT)
    if r.status_code != 201:
        _fail(f"registering {email}: {r.status_code} {r.text[:300]}")
    print(email, password, _token(r, "register"))


def login(base: str, email: str, password: str) -> None:
    r = requests.post(f"{base}/api/users/login", json={"email": email, "password": password}, timeout=TIMEOUT)
    if r.status_code != 200:
        _fail(f"logging in as {email}: {r.status_code} {r.text[:300]}")
    print(_token(r, "login"))


def restore(base: str, state_file: str, email: str, password: str) -> None:
    try:
        with open(state_file, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return
    if state["email"] == email and state["password"] == password:
        return
    r = requests.post(f"{base}/api/users/login", json={"email": state["email"], "password": state["password"]},
                      timeout=TIMEOUT)
    if r.status_code != 200:
        _fail(f"restoring {email}: login as {state['email']} failed: {r.status_code} {r.text[:300]}")
    token = _token(r, "login")
    r = requests.put(f"{base}/api/users/profile", json={"email": email, "password": password},
                     headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    if r.status_code != 200:
        _fail(f"restoring {email}: profile update failed: {r.status_code} {r.text[:300]}")
    print(f"restored the credentials of {email} (the fuzzer had changed them)")


# ---- summary ---------------------------------------------------------------------------------


def _decode(value) -> str:
    """A recorded body: a string, or {"$base64": ...}."""
    import base64

    if value is None:
        return ""
    if isinstance(value, dict) and "$base64" in value:
        try:
            return base64.b64decode(value["$base64"]).decode("utf-8", "replace")
        except Exception:
            return str(value)
    return value if isinstance(value, str) else json.dumps(value)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _curl(request: dict, case: dict) -> str:
    parts = ["curl", "-X", request.get("method") or case.get("method") or "GET"]
    headers = request.get("headers") or {}
    for name, values in headers.items():
        value = values[0] if isinstance(values, list) and values else values
        if name.lower() == "authorization":
            parts += ["-H", "'Authorization: Bearer $TOKEN'" if value == "[Filtered]" else f"'Authorization: {value}'"]
        elif name.lower() in ("content-type", "accept"):
            parts += ["-H", f"'{name}: {value}'"]
        elif name.lower() not in ("user-agent", "x-schemathesis-testcaseid", "accept-encoding", "connection",
                                  "content-length"):
            parts += ["-H", f"'{name}: {value}'"]
    body = _decode(request.get("body"))
    if body:
        parts += ["-d", "'" + body.replace("'", "'\\''") + "'"]
    parts.append(f"'{request.get('uri')}'")
    return " ".join(parts)


def _findings(path: str):
    """Every failed check in an ndjson report of `schemathesis run`."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            scenario = event.get("ScenarioFinished")
            if not scenario or scenario.get("status") not in ("failure", "error"):
                continue
            recorder = scenario.get("recorder") or {}
            cases = recorder.get("cases") or {}
            interactions = recorder.get("interactions") or {}
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks or []:
                    if check.get("status") != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    case = (cases.get(case_id) or {}).get("value") or {}
                    interaction = interactions.get(case_id) or {}
                    request = interaction.get("request") or {}
                    response = interaction.get("response") or {}
                    operation = failure.get("operation") or f"{case.get('method')} {case.get('path')}"
                    message = (failure.get("message") or "").strip()
                    yield {
                        "operation": operation,
                        "check": check.get("name"),
                        "code": failure.get("code") or "",
                        "title": failure.get("title") or "",
                        "detail": message.splitlines()[0] if message else "",
                        "status": response.get("status_code"),
                        "phase": scenario.get("phase"),
                        "curl": _curl(request, case),
                        "response": _decode(response.get("content")),
                    }


def summarize(pairs: list[str]) -> None:
    seen: dict[tuple, dict] = {}
    for label, path in zip(pairs[::2], pairs[1::2]):
        try:
            for finding in _findings(path):
                key = (finding["operation"], finding["check"], finding["status"])
                entry = seen.get(key)
                if entry is None:
                    finding["runs"] = {label}
                    finding["count"] = 1
                    seen[key] = finding
                    continue
                entry["runs"].add(label)
                entry["count"] += 1
                if len(finding["curl"]) < len(entry["curl"]):  # keep the smallest reproduction
                    entry.update({k: finding[k] for k in ("curl", "response", "detail", "phase")})
        except FileNotFoundError:
            print(f"  ({label}: no report at {path})")
    if not seen:
        print("  none")
        return

    def order(item):
        operation, check, status = item[0]
        method, _, route = str(operation).partition(" ")
        return route, method, str(check), status or 0

    for (operation, check, status), f in sorted(seen.items(), key=order):
        runs = "+".join(sorted(f["runs"]))
        print(f"- {operation} | {f['code']} {check} | {status} | as {runs}, {f['count']}x")
        if f["detail"]:
            print(f"    {_one_line(f['detail'], 200)}")
        print(f"    $ {_one_line(f['curl'], 400)}")
        if f["response"]:
            print(f"    -> {_one_line(f['response'], 240)}")


def main() -> None:
    args = sys.argv[1:]
    if not args:
        _fail(__doc__)
    command, rest = args[0], args[1:]
    if command == "register" and len(rest) == 1:
        register(rest[0].rstrip("/"))
    elif command == "login" and len(rest) == 3:
        login(rest[0].rstrip("/"), rest[1], rest[2])
    elif command == "restore" and len(rest) == 4:
        restore(rest[0].rstrip("/"), *rest[1:])
    elif command == "summarize" and rest and len(rest) % 2 == 0:
        summarize(rest)
    else:
        _fail(__doc__)


if __name__ == "__main__":
    main()
