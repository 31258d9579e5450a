#!/usr/bin/env python3
"""Differential test of ringserve's request-head parser against h11, a strict reference parser.

Usage: h11_diff.py --verdict PATH [--count N] [--seed S] [--show K]

PATH is the `parse_verdict` example (cargo build --example parse_verdict), which runs
ringserve's own parser (`http::request::parse`) on each head. The script generates a corpus of
request heads -- valid ones built from parts, then the same heads mutated one to three times
(bytes inserted, deleted or replaced with interesting ones, line ends broken, tricky field
lines added, versions and separators changed, heads cut short) -- seeded, so the same
arguments give the same corpus. It asks ringserve and h11 for their verdicts and checks:

    every head ringserve accepts is accepted by h11 with the same method, target and
    fields (names compared case-insensitively, in order), and a version h11 reads as 1.0
    exactly when ringserve does.

Heads h11 accepts and ringserve refuses are counted, not failed: ringserve is stricter on
purpose (bare LF line ends, obs-fold, Transfer-Encoding with Content-Length, invalid Host
values, several Host lines, request targets that are not origin-, absolute- or
asterisk-form, versions other than HTTP/1.x).

Normalisations before comparing (h11 rewrites these fields; they are not differences):
  - Content-Length: h11 keeps one line with one value for `5, 5` or repeated lines.
  - Transfer-Encoding: h11 lower-cases the value.

Deliberate differences (ringserve accepts, h11 refuses), each with its reason:
  1. Empty lines (CRLF) before the request line. RFC 9112 §2.2: a server SHOULD ignore at
     least one; h11 refuses them ("no request line received"). Checked: the same head
     without those lines must then agree in full.
  2. Transfer-Encoding lists whose final coding is chunked but which name other codings or
     empty list elements (`gzip, chunked`, `,chunked`). Valid framing per RFC 9112 §6.1 and
     RFC 9110 §5.6.1; h11 supports exactly `chunked` only. ringserve never reads request
     bodies -- it answers and closes the connection -- so the other codings never matter.
  3. HTTP/1.2 to HTTP/1.9 are read as HTTP/1.1 (RFC 9110 §2.5); h11 reports the version as
     sent. Not counted as a difference: the version rule above allows it.

Exit status 0 when every accepted head agrees (up to the differences above), 1 otherwise;
the first --show mismatches are printed.
"""

import argparse
import random
import subprocess
import sys

import h11

SAFE_HEADS_LIMIT = 8 * 1024  # ringserve's default head limit; the corpus stays well below it

METHODS = [b"GET", b"HEAD", b"OPTIONS", b"POST", b"DELETE", b"PROPFIND", b"M-SEARCH", b"get"]
TARGETS = [
    b"/", b"/index.html", b"/a/b?c=d", b"/%20x", b"*", b"http://h/x", b"https://h:8080/a?b",
    b"/?", b"/a;b", b"/~user/", b"/a%2Fb", b"/dir/", b"/a/../b", b"/x?y=1&z=%22",
]
VERSIONS = [b"HTTP/1.1"] * 4 + [b"HTTP/1.0"]
HOSTS = [b"Host: x", b"Host: example.com:8080", b"Host: [::1]", b"host: h", b"HOST:h"]
FIELDS = [
    b"Connection: close", b"Connection: keep-alive", b"Range: bytes=0-1",
    b'If-None-Match: "a", W/"b"', b"User-Agent: t/1.0 (x; y)", b"Accept: */*",
    b"X-Forwarded-For: 192.0.2.1, 10.0.0.1", b"Content-Length: 0", b"Content-Length: 5",
    b"Content-Length: 5, 5", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
    b"X-Empty:", b"X-Spaces:   padded   ", b"X-Obs: caf\xe9", b"Cookie: a=b; c=d",
    b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT", b"Accept-Encoding: gzip,deflate",
    b"X-Tab:\tv\t", b'X-Quote: "q"', b"Referer: http://r/", b"X-Real-IP: 192.0.2.9",
    b"If-Range: \"a\"", b"Content-Length: 05",
]
TRICKY_FIELDS = [
    b"Content-Length: +5", b"Content-Length: ", b"Content-Length: 1,2", b"Content-Length: 0x5",
    b"Content-Length: 5", b"Content-Length: 005", b"Transfer-Encoding: xchunked",
    b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: ,chunked",
    b"Transfer-Encoding: CHUNKED", b"Transfer-Encoding: \x0bchunked", b"Transfer-Encoding: chunked",
    b" folded", b"\tfolded", b": novalue", b"NoColon", b"Bad Name: x", b"X: a\x00b",
    b"Host: y", b"Host: a b", b"Host: user@h", b"X : y", b"X\t: y", b"X:\x7f", b"X: \xa0",
    b"\xefoo: bar", b"X-\x01: y", b"Connection: close, keep-alive", b"X:", b"x:y",
    b"Content-Length\x85: 1",
]
INTERESTING = b" \t\r\n\x00:,;\x0b\x0c\x7f\x80\xa0\xff\"(@_+-/?%#*=" + b"aZ09"
VERSION_SWAPS = [b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.10", b"http/1.1", b"HTTP/1",
                 b"HTTP/1.1 ", b"HTTP/9.9", b"HTTP/1.0", b"HTTP/1.1"]


def build_head(rng):
    """A valid-looking head: request line, maybe a Host, some fields, the blank line."""
    version = rng.choice(VERSIONS)
    lines = [b" ".join([rng.choice(METHODS), rng.choice(TARGETS), version])]
    fields = rng.sample(FIELDS, rng.randint(0, 5))
    if version == b"HTTP/1.1" or rng.random() < 0.5:
        fields.insert(rng.randint(0, len(fields)), rng.choice(HOSTS))
    lines.extend(fields)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def mutate(rng, head):
    """One random change to `head`."""
    head = bytearray(head)
    kind = rng.randrange(11)
    if kind == 0:  # insert an interesting byte
        head.insert(rng.randrange(len(head) + 1), rng.choice(INTERESTING))
    elif kind == 1 and head:  # delete a byte
        del head[rng.randrange(len(head))]
    elif kind == 2 and head:  # replace a byte
        head[rng.randrange(len(head))] = rng.choice(INTERESTING)
    elif kind == 3:  # break one line end
        ends = [i for i in range(len(head) - 1) if head[i:i + 2] == b"\r\n"]
        if ends:
            i = rng.choice(ends)
            head[i:i + 2] = rng.choice([b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n\r\n"])
    elif kind == 4:  # duplicate a field line
        lines = bytes(head).split(b"\r\n")
        if len(lines) > 3:
            i = rng.randrange(1, len(lines) - 2)
            lines.insert(i, lines[i])
        head = bytearray(b"\r\n".join(lines))
    elif kind == 5:  # add a tricky field line after the request line or any field line
        lines = bytes(head).split(b"\r\n")
        if len(lines) > 2:
            lines.insert(rng.randrange(1, len(lines) - 1), rng.choice(TRICKY_FIELDS))
        head = bytearray(b"\r\n".join(lines))
    elif kind == 6:  # change the version
        for old in (b"HTTP/1.1", b"HTTP/1.0"):
            i = head.find(old)
            if i >= 0:
                head[i:i + len(old)] = rng.choice(VERSION_SWAPS)
                break
    elif kind == 7:  # change a separator in the request line
        line_end = head.find(b"\r\n")
        spaces = [i for i in range(max(line_end, 0)) if head[i] == 0x20]
        if spaces:
            head[rng.choice(spaces)] = rng.choice(b"\t\x0b\x00") if rng.random() < 0.5 else 0x20
            if rng.random() < 0.5:
                head.insert(rng.choice(spaces), 0x20)
    elif kind == 8:  # swap the case of a letter
        letters = [i for i, b in enumerate(head) if chr(b).isalpha() and b < 0x80]
        if letters:
            i = rng.choice(letters)
            head[i] ^= 0x20
    elif kind == 9:  # cut the head short
        head = head[: rng.randrange(len(head) + 1)]
    else:  # an empty line first
        head[0:0] = b"\r\n"
    return bytes(head)


def corpus(count, seed):
    rng = random.Random(seed)
    heads = []
    while len(heads) < count:
        head = build_head(rng)
        if rng.random() < 0.8:
            for _ in range(rng.randint(1, 3)):
                head = mutate(rng, head)
        heads.append(head[:SAFE_HEADS_LIMIT - 1])
    return heads


def ringserve_verdicts(binary, heads):
    """ringserve's parser on each head: ("accept", method, target, version, fields) or
    ("reject", error) or ("partial",)."""
    stdin = "".join(h.hex() + "\n" for h in heads)
    run = subprocess.run([binary], input=stdin, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"h11_diff: {binary} failed ({run.returncode}): {run.stderr.strip()}")
    lines = run.stdout.splitlines()
    if len(lines) != len(heads):
        sys.exit(f"h11_diff: {binary} gave {len(lines)} verdicts for {len(heads)} heads")
    out = []
    for line in lines:
        parts = line.split(" ")
        if parts[0] == "accept":
            fields = []
            if len(parts) > 4 and parts[4]:
                for pair in parts[4].split(","):
                    name, value = pair.split("=")
                    fields.append((bytes.fromhex(name).lower(), bytes.fromhex(value)))
            out.append(("accept", bytes.fromhex(parts[1]), bytes.fromhex(parts[2]),
                        parts[3].encode(), fields))
        else:
            out.append(tuple(parts))
    return out


def h11_verdict(head):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as e:
        return ("reject", str(e))
    if isinstance(event, h11.Request):
        fields = [(name.lower(), value) for name, value in event.headers.raw_items()]
        return ("accept", event.method, event.target, event.http_version, fields)
    return ("partial",)


def normalise(fields):
    """ringserve's fields as h11 reports them: Content-Length collapsed, TE lower-cased."""
    out, seen_length = [], False
    for name, value in fields:
        if name == b"content-length":
            if seen_length:
                continue
            seen_length = True
            value = value.split(b",")[0].strip(b" \t")
        elif name == b"transfer-encoding":
            value = value.lower()
        out.append((name, value))
    return out


def same(ours, theirs):
    """Whether an accepted head agrees: method, target, fields, and the version rule."""
    if theirs[0] != "accept":
        return False
    _, method, target, version, fields = ours
    _, h_method, h_target, h_version, h_fields = theirs
    version_ok = (h_version == b"1.0") == (version == b"1.0") and h_version.startswith(b"1.")
    return (method, target, normalise(fields)) == (h_method, h_target, h_fields) and version_ok


def deliberate(head, ours, theirs):
    """The deliberate differences that explain a disagreement (a list), or None. Each one is
    undone on the head (and on ringserve's fields) and h11 asked again: what remains must
    agree in full."""
    reasons = []
    if theirs[0] == "reject" and head.startswith(b"\r\n"):
        while head.startswith(b"\r\n"):
            head = head[2:]
        theirs = h11_verdict(head)
        reasons.append("empty lines before the request line")
        if same(ours, theirs):
            return reasons
    te = [v for n, v in ours[4] if n == b"transfer-encoding"]
    if theirs[0] == "reject" and "Transfer-Encoding" in theirs[1] and te != [b"chunked"]:
        head, ours = one_chunked_coding(head, ours)
        reasons.append("Transfer-Encoding list ending in chunked")
        if same(ours, h11_verdict(head)):
            return reasons
    return None


def one_chunked_coding(head, ours):
    """`head` and ringserve's verdict with every Transfer-Encoding line replaced by one
    `Transfer-Encoding: chunked` where the first one was."""
    lines, seen = [], False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"transfer-encoding:"):
            if not seen:
                lines.append(b"Transfer-Encoding: chunked")
            seen = True
        else:
            lines.append(line)
    fields, seen = [], False
    for name, value in ours[4]:
        if name == b"transfer-encoding":
            if not seen:
                fields.append((name, b"chunked"))
            seen = True
        else:
            fields.append((name, value))
    return b"\r\n".join(lines), ours[:4] + (fields,)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verdict", required=True, help="the parse_verdict example binary")
    parser.add_argument("--count", type=int, default=4000, help="heads to generate (4000)")
    parser.add_argument("--seed", type=int, default=10, help="corpus seed (10)")
    parser.add_argument("--show", type=int, default=10, help="mismatches to print (10)")
    args = parser.parse_args()

    heads = corpus(args.count, args.seed)
    ours = ringserve_verdicts(args.verdict, heads)
    accepted = h11_accepted = 0
    stricter = {}  # ringserve's verdict on heads h11 accepts
    reasons = {}
    mismatches = []
    for head, mine in zip(heads, ours):
        theirs = h11_verdict(head)
        h11_accepted += theirs[0] == "accept"
        if mine[0] != "accept":
            if theirs[0] == "accept":
                verdict = " ".join(mine)
                stricter[verdict] = stricter.get(verdict, 0) + 1
            continue
        accepted += 1
        if same(mine, theirs):
            continue
        explained = deliberate(head, mine, theirs)
        if explained:
            reason = " + ".join(explained)
            reasons[reason] = reasons.get(reason, 0) + 1
        else:
            mismatches.append((head, mine, theirs))

    print(f"h11_diff: {len(heads)} heads (seed {args.seed}, h11 {h11.__version__}): "
          f"ringserve accepts {accepted}, h11 accepts {h11_accepted}; "
          f"ringserve refuses {sum(stricter.values())} that h11 accepts ("
          + ", ".join(f"{v} {n}" for v, n in sorted(stricter.items())) + ")")
    for reason, n in sorted(reasons.items()):
        print(f"h11_diff: deliberate difference, {reason}: {n} heads")
    for head, mine, theirs in mismatches[: args.show]:
        print(f"h11_diff: MISMATCH {head!r}\n  ringserve: {mine}\n  h11:       {theirs}")
    if mismatches:
        print(f"h11_diff: FAILED: {len(mismatches)} accepted heads disagree with h11")
        return 1
    print("h11_diff: every head ringserve accepts agrees with h11")
    return 0


if __name__ == "__main__":
    sys.exit(main())
