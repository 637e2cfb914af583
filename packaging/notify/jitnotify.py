# SPDX-License-Identifier: MIT
"""What the shipped notify hooks of jit share: reading the event jit-brokerd writes on
their stdin, escaping text that comes from users, and the notice a person reads.

The document is described in docs/notify.md. Every notice carries the command to run
next (jitctl approve 42) and the request's reason, ticket, duration and the host's
profile. Not a hook itself: webhook, mail and terminal import it from their directory."""

import json
import sys
import unicodedata

# A notice never grows past this, whatever the request holds.
NOTICE_MAX = 8192


def read_event(stream=None):
    """The event document from stdin (or stream); exits 2 when it is not one."""
    stream = stream or sys.stdin
    try:
        doc = json.loads(stream.read(1 << 20))
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"the event on stdin is not JSON: {e}", status=2)
    if not isinstance(doc, dict) or not isinstance(doc.get("request"), dict):
        fail("the event on stdin is not a jit event document", status=2)
    return doc


def fail(message, status=1):
    print(f"{prog()}: {message}", file=sys.stderr)
    sys.exit(status)


def prog():
    return sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "jit-notify"


def safe(value, limit=1024):
    """Text from users made harmless for a terminal, a mail or a chat: control characters
    as \\xNN, format characters (bidi controls, zero-width ones) and line separators as
    \\uXXXX, cut to limit characters."""
    if value is None:
        return ""
    out = []
    for ch in str(value)[:limit]:
        cat = unicodedata.category(ch)
        if cat == "Cc":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        elif cat in ("Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def headline(doc):
    """One line that says what happened."""
    r = doc["request"]
    ev = doc.get("event")
    who, svc, dur = safe(r.get("requester")), safe(r.get("service")), safe(r.get("duration_text"))
    rid = safe(r.get("id"), 32)
    actor = safe(doc.get("actor"))
    approvals = f"{r.get('approvals_count', 0)} of {r.get('approvals_required', 0)}"
    if ev == "filed" and r.get("state") == "pending":
        return f"{who} requests {svc} for {dur} (request {rid}), waiting for approval ({approvals})"
    if ev == "filed":
        return (f"{who} requested {svc} for {dur} (request {rid}): {safe(r.get('state'))} at once "
                f"by rule {safe(r.get('rule'))}")
    if ev == "approval":
        return f"{actor} approved request {rid} of {who} for {svc} ({approvals}); more approvals are needed"
    if ev == "approved":
        return f"{svc} granted to {who} for {dur} (request {rid}), approved by {actor}"
    if ev == "break_glass":
        return f"BREAK-GLASS: {who} took {svc} for {dur} without approval (request {rid})"
    if ev == "acknowledged":
        return f"{actor} acknowledged break-glass grant {rid} of {who}"
    if ev == "expired":
        return f"grant {rid} of {who} ({svc}) ended: {safe(r.get('end_reason')) or 'expired'}"
    if ev == "timed_out":
        return f"request {rid} of {who} ({svc}) timed out without enough approvals"
    if ev == "consumed":
        return f"one-shot grant {rid} of {who} ({svc}) was used up"
    if ev == "withdrawn":
        return f"request {rid} of {who} ({svc}) withdrawn: {safe(r.get('end_reason'))}"
    verbs = {"denied": "denied", "cancelled": "cancelled", "revoked": "revoked"}
    if ev in verbs:
        why = safe(r.get("end_reason"))
        return f"{actor} {verbs[ev]} request {rid} of {who} ({svc})" + (f": {why}" if why else "")
    return f"{safe(ev)}: request {rid} of {who} ({svc})"


def profile_text(doc):
    p = doc.get("profile") or {}
    parts = [f"{k} {safe(p.get(k), 256)}" for k in ("owner", "environment", "classification") if p.get(k)]
    text = safe(doc.get("host"), 256)
    if parts:
        text += " (" + ", ".join(parts) + ")"
    if p.get("description"):
        text += " - " + safe(p.get("description"), 256)
    return text


def notice_lines(doc):
    """The notice: the headline, then the request's details and the command to run."""
    r = doc["request"]
    lines = [f"jit on {safe(doc.get('host'), 256)}: {headline(doc)}",
             f"Reason:   {safe(r.get('reason'))}",
             f"Ticket:   {safe(r.get('ticket')) or '(none)'}",
             *([f"Command:  {safe(r.get('command_line'))} ({safe(r.get('command'))}, "
                f"as {safe(r.get('run_as_user'))})"] if r.get("command") else []),
             f"Duration: {safe(r.get('duration_text'))}",
             f"Host:     {profile_text(doc)}",
             f"Run:      {safe(doc.get('command'), 128)}"]
    total, kept = 0, []
    for line in lines:
        total += len(line) + 1
        if total > NOTICE_MAX:
            break
        kept.append(line)
    return kept


def notice(doc):
    return "\n".join(notice_lines(doc)) + "\n"
