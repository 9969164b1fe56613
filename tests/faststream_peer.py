#!/usr/bin/env python3
"""faststream_peer.py - a peer that behaves like faststream-redis-timers.

The C tests (tests/test_faststream_peer.c) run this against their private
redis-server to share timers with the engine's FASTSTREAM layout both ways.
It re-implements, from reading the library's source (engine/FASTSTREAM.md
cites every file), what that library puts on the wire and reads back:

  - TimerStore (store.py): schedule = MULTI ZADD + HSET; due = ZRANGEBYSCORE
    with LIMIT and the non-UTF-8 self-heal; claim and remove = its two Lua
    scripts through EVALSHA with a NOSCRIPT fallback; pending; is_pending;
    cancel_all = MULTI ZCARD + UNLINK + UNLINK;
  - the envelope: FastStream's BinaryMessageFormatV1 writer (u16 lengths
    from len(str), i.e. characters) and reader (u16 lengths used as byte
    counts, slices cut short at the end), MessageFormat.build's header
    order, encode_message's content-type rule, TimerMessageFormat.parse with
    the 0.x {"b": hex, "ct": ...} envelope, TimerParser's outcomes, and
    decode_message;
  - the subscriber loop: due, claim each id, parse, handle, remove on
    ack/reject, nothing on nack.

json is the standard library's, as in the library's default install (it
uses orjson only when that is installed). Needs Debian's python3-redis.

The two Lua scripts below are copied verbatim from
modern-python/faststream-redis-timers, faststream_redis_timers/subscriber/
lua.py (MIT License, Copyright (c) Artur Shiriev), so that this peer runs
the library's exact bytes against Redis.

Output is line-based for the C side: "key=value" lines, byte strings in hex.
"""

import argparse
import json
import os
import struct
import sys
import time
import uuid

import redis
from redis.exceptions import NoScriptError

# ---------------------------------------------------------------- Lua
# Verbatim from faststream_redis_timers/subscriber/lua.py (MIT), see above.
CLAIM_LUA = """\
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return nil end
local payload = redis.call('HGET', KEYS[2], ARGV[1])
if not payload then
    redis.call('ZREM', KEYS[1], ARGV[1])
    return nil
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return payload
"""

COMMIT_LUA = """\
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
"""

# ----------------------------------------------------------- envelope

MAGIC = b"\x89BIN\x0d\x0a\x1a\x0a"
TEXT = "text/plain"
JSON_CT = "application/json"


def encode_body(message):
    """(bytes, content type or None) as FastStream's encode_message, without
    a serializer (json.dumps; the broker's pydantic serializer may format
    the JSON differently, the content type is the same)."""
    if message is None:
        return b"", None
    if isinstance(message, bytes):
        return message, None
    if isinstance(message, str):
        return message.encode(), TEXT
    return json.dumps(message).encode(), JSON_CT


def publish_headers(timer_id, content_type, correlation_id=None, headers=None):
    """Header dict in MessageFormat.build's order, as TimersBroker.publish
    fills it: correlation_id (default the timer id), content-type when set,
    then the caller's headers (dict.update)."""
    out = {"correlation_id": correlation_id or timer_id}
    if content_type:
        out["content-type"] = content_type
    if headers is not None:
        out.update(headers)
    return out


def _u16_string(s):
    # The writer's length is len() of the str (characters) or bytes.
    raw = s if isinstance(s, bytes) else s.encode()
    return struct.pack(">H", len(s)) + raw


def v1_encode(headers, body):
    block = b"".join(_u16_string(k) + _u16_string(v) for k, v in headers.items())
    out = bytearray(MAGIC)
    out += struct.pack(">H", 1)
    headers_start = len(out) + 8
    out += struct.pack(">I", headers_start)
    out += struct.pack(">I", 2 + headers_start + len(block))
    out += struct.pack(">H", len(headers))
    out += block
    out += body
    return bytes(out)


class _Reader:
    """BinaryReader: slices never fail, struct.unpack does."""

    def __init__(self, data):
        self.data, self.offset = data, 0

    def take(self, n):
        piece = self.data[self.offset:self.offset + n]
        self.offset += n
        return piece

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">I", self.take(4))[0]

    def string(self):
        return self.take(self.short()).decode()


def _v1_read(data):
    r = _Reader(data)
    magic = r.take(len(MAGIC))
    version = r.short()
    if magic != MAGIC or version != 1:
        parsed = json.loads(data)
        return parsed["data"].encode(), parsed["headers"]
    headers_start, data_start = r.int(), r.int()
    r.offset = headers_start
    headers = {}
    for _ in range(r.short()):
        key = r.string()
        headers[key] = r.string()
    r.offset = data_start
    return r.data[r.offset:], headers


def faststream_parse(data):
    """BinaryMessageFormatV1.parse: V1, else JSON, else raw."""
    try:
        return _v1_read(data)
    except Exception:  # noqa: BLE001 - FastStream catches everything
        try:
            parsed = json.loads(data)
            return parsed["data"].encode(), parsed.get("headers", {})
        except Exception:  # noqa: BLE001
            return data, {}


def timers_parse(data):
    """TimerMessageFormat.parse: the 0.x envelope first, when it is one."""
    if data[:1] == b"{":
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, ValueError):
            d = None
        if isinstance(d, dict) and "b" in d:
            try:
                body = bytes.fromhex(d["b"])
            except (TypeError, ValueError) as e:
                raise ValueError("legacy timer envelope body is not hex") from e
            headers = {}
            if d.get("ct"):
                headers["content-type"] = d["ct"]
            return body, headers
    return faststream_parse(data)


def timer_message(data, timer_id):
    """What TimerParser.parse_message leads to: ("deliver", body, headers,
    content_type, correlation_id), ("drop",) when it removes the timer
    (ValueError), ("stuck",) for any other exception (never handled, left
    to its lease)."""
    try:
        body, headers = timers_parse(data)
    except ValueError:
        return ("drop",)
    except Exception:  # noqa: BLE001 - RecursionError, ...
        return ("stuck",)
    try:
        ct = headers.get("content-type")
        cid = headers.get("correlation_id", timer_id)
        headers.get("reply_to", "")
    except Exception:  # noqa: BLE001 - headers not a dict
        return ("stuck",)
    return ("deliver", body, headers, ct, cid)


def decode_message(body, content_type):
    """FastStream's decode_message: how a handler's body argument is built."""
    if content_type:
        if content_type == TEXT:
            return body.decode()
        if isinstance(content_type, str) and content_type.startswith(JSON_CT):
            return json.loads(body)
        return body
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body


# -------------------------------------------------------------- store

class Store:
    def __init__(self, client, timeline_key, payloads_key):
        self.client = client
        self.timeline_key, self.payloads_key = timeline_key, payloads_key
        self.shas = {}

    def keys(self, full_topic):
        return f"{self.timeline_key}:{full_topic}", f"{self.payloads_key}:{full_topic}"

    def _eval(self, script, *args):
        sha = self.shas.get(script)
        try:
            if sha is None:
                raise NoScriptError("not loaded")
            return self.client.evalsha(sha, 2, *args)
        except NoScriptError:
            self.shas[script] = self.client.script_load(script)
            return self.client.evalsha(self.shas[script], 2, *args)

    def schedule(self, full_topic, timer_id, payload, activation_ts):
        tl, pl = self.keys(full_topic)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(tl, {timer_id: activation_ts})
            pipe.hset(pl, timer_id, payload)
            pipe.execute()

    def due(self, full_topic, now, limit):
        tl, pl = self.keys(full_topic)
        out = []
        for raw in self.client.zrangebyscore(tl, "-inf", now, start=0, num=limit):
            try:
                out.append(raw.decode())
            except UnicodeDecodeError:
                self._eval(COMMIT_LUA, tl, pl, raw)  # self-heal
        return out

    def claim(self, full_topic, timer_id, now, lease_ttl):
        tl, pl = self.keys(full_topic)
        return self._eval(CLAIM_LUA, tl, pl, timer_id, now, now + lease_ttl)

    def remove(self, full_topic, timer_id):
        tl, pl = self.keys(full_topic)
        self._eval(COMMIT_LUA, tl, pl, timer_id)

    def pending(self, full_topic, before=None):
        tl, _ = self.keys(full_topic)
        top = before if before is not None else "+inf"
        return [r.decode() for r in self.client.zrangebyscore(tl, "-inf", top)]

    def is_pending(self, full_topic, timer_id):
        tl, _ = self.keys(full_topic)
        return self.client.zscore(tl, timer_id) is not None

    def cancel_all(self, full_topic):
        tl, pl = self.keys(full_topic)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zcard(tl)
            pipe.unlink(tl)
            pipe.unlink(pl)
            return int(pipe.execute()[0])


# ------------------------------------------------------------- output

def hx(b):
    return (b if isinstance(b, bytes) else str(b).encode("utf-8", "surrogatepass")).hex()


def print_message(outcome, prefix=""):
    """The parse outcome as lines: outcome, body, ct, cid, then each header
    as h=<key hex>:<value hex> (non-str values: hj=<key hex>:<json hex>;
    keys or values a C string cannot hold: hx=<key hex>)."""
    print(f"{prefix}outcome={outcome[0]}")
    if outcome[0] != "deliver":
        return
    _, body, headers, ct, cid = outcome
    print(f"{prefix}body={body.hex()}")
    print(f"{prefix}headers={len(headers)}")
    for k, v in headers.items():
        if isinstance(v, str):
            bad = "\x00" in k or "\x00" in v or any(0xD800 <= ord(c) <= 0xDFFF for c in k + v)
            print(f"{prefix}{'hx' if bad else 'h'}={hx(k)}:{hx(v)}")
        else:
            print(f"{prefix}hj={hx(k)}:{hx(json.dumps(v))}")
    if isinstance(ct, str):
        try:
            dec = decode_message(body, ct)
            kind = type(dec).__name__
        except Exception as e:  # noqa: BLE001
            kind = "error:" + type(e).__name__
        print(f"{prefix}decoded={kind}")
    elif ct is None:
        dec = decode_message(body, None)
        print(f"{prefix}decoded={type(dec).__name__}")


def body_from_args(kind, body_hex):
    raw = bytes.fromhex(body_hex or "")
    if kind == "none":
        return None
    if kind == "bytes":
        return raw
    if kind == "text":
        return raw.decode()
    return json.loads(raw)  # json: any JSON value, published as the object


def headers_from_args(pairs):
    out = {}
    for p in pairs or []:
        k, _, v = p.partition(":")
        out[bytes.fromhex(k).decode()] = bytes.fromhex(v).decode()
    return out


# ----------------------------------------------------------- commands

def cmd_publish(store, a):
    if a.count > 1:  # many: ids <id-prefix><i>, nothing printed per timer
        for i in range(a.count):
            body, ct = encode_body(body_from_args(a.kind, a.body))
            timer_id = f"{a.id_prefix}{i}"
            payload = v1_encode(publish_headers(timer_id, ct), body)
            store.schedule(a.prefix + a.topic, timer_id, payload, time.time() + a.delay)
        print(f"count={a.count}")
        return
    timer_id = bytes.fromhex(a.id).decode() if a.id else str(uuid.uuid4())
    body, ct = encode_body(body_from_args(a.kind, a.body))
    headers = publish_headers(timer_id, ct, a.correlation_id, headers_from_args(a.header))
    if a.legacy:  # what 0.x wrote: json.dumps({"b": body.hex(), "ct": ct})
        payload = json.dumps({"b": body.hex(), "ct": ct}).encode()
    elif a.raw is not None:
        payload = bytes.fromhex(a.raw)
    else:
        payload = v1_encode(headers, body)
    at = a.at if a.at is not None else time.time() + a.delay
    store.schedule(a.prefix + a.topic, timer_id, payload, at)
    print(f"id={hx(timer_id)}")
    print(f"payload={payload.hex()}")
    print_message(timer_message(payload, timer_id), "expect.")


def cmd_parse_stored(store, a):
    _, pl = store.keys(a.prefix + a.topic)
    timer_id = bytes.fromhex(a.id).decode()
    payload = store.client.hget(pl, timer_id)
    if payload is None:
        print("outcome=absent")
        return
    print(f"payload={payload.hex()}")
    print_message(timer_message(payload, timer_id))


def cmd_consume(store, a):
    """The subscriber loop, sequential: until --count deliveries or
    --timeout seconds. Prints one 'fired=<id hex>' block per delivery."""
    full = a.prefix + a.topic
    deadline = time.monotonic() + a.timeout
    fired = 0
    out = open(a.out, "w") if a.out else sys.stdout
    try:
        while fired < a.count and time.monotonic() < deadline:
            ids = store.due(full, time.time(), a.max_concurrent)
            if not ids:
                time.sleep(0.01)
                continue
            for timer_id in ids:
                payload = store.claim(full, timer_id, time.time(), a.lease)
                if payload is None:
                    continue  # contested
                m = timer_message(payload, timer_id)
                if m[0] == "drop":
                    store.remove(full, timer_id)
                    continue
                if m[0] == "stuck":
                    continue
                out.write(f"fired={hx(timer_id)} body={m[1].hex()} headers={len(m[2])}\n")
                out.flush()
                fired += 1
                if not a.nack:
                    store.remove(full, timer_id)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"count={fired}")


def cmd_claim(store, a):
    timer_id = bytes.fromhex(a.id).decode()
    payload = store.claim(a.prefix + a.topic, timer_id, time.time(), a.lease)
    print("payload=none" if payload is None else f"payload={payload.hex()}")


def cmd_ack(store, a):
    store.remove(a.prefix + a.topic, bytes.fromhex(a.id).decode())
    print("ok=1")


def cmd_pending(store, a):
    ids = store.pending(a.prefix + a.topic, a.before)
    print(f"count={len(ids)}")
    for i in ids:
        print(f"id={hx(i)}")


def cmd_has_pending(store, a):
    print(f"pending={int(store.is_pending(a.prefix + a.topic, bytes.fromhex(a.id).decode()))}")


def cmd_cancel_all(store, a):
    print(f"count={store.cancel_all(a.prefix + a.topic)}")


def cmd_due(store, a):
    ids = store.due(a.prefix + a.topic, time.time(), a.limit)
    print(f"count={len(ids)}")


def cmd_check_decoder(a):
    """Differential test: runs the C dumper (tests/fs_decode_dump.c) over
    the files (folders: every file in them), plus --generate cases from
    gen-cases, and compares each result with timer_message()."""
    import subprocess
    import tempfile
    files = []
    for f in a.files:
        if os.path.isdir(f):
            files += sorted(os.path.join(f, n) for n in os.listdir(f) if not n.startswith("."))
        else:
            files.append(f)
    with tempfile.TemporaryDirectory() as tmp:
        if a.generate:
            cmd_gen_cases(argparse.Namespace(dir=tmp, count=a.generate, mutations=8, seed=a.seed))
            files += sorted(os.path.join(tmp, n) for n in os.listdir(tmp))
        return _check_files(a.dump, files)


def _check_files(dump, files):
    import subprocess
    out = subprocess.run([dump, *files], capture_output=True, check=True, timeout=300)
    lines = out.stdout.decode().splitlines()
    bad = skipped = 0
    for path, line in zip(files, lines):
        c = json.loads(line)
        data = open(path, "rb").read()
        if _nesting(data) > 900:
            skipped += 1  # Python's RecursionError depth is version-bound
            continue
        why = _compare(timer_message(data, "id"), c)
        if why:
            bad += 1
            print(f"MISMATCH {os.path.basename(path)}: {why}")
    print(f"checked={len(lines) - skipped} skipped={skipped} mismatches={bad}")
    return 1 if bad or len(lines) != len(files) else 0


def cmd_gen_cases(a):
    """Writes envelopes as the library and its 0.x and FastStream JSON
    writers produce them, odd ones, and random mutations of all of them, for
    check-decoder. Deterministic for a seed."""
    import random
    rnd = random.Random(a.seed)
    texts = ["", "a", "abc", "\u00e9", "\u00e9\u00e9", "\u043a\u043b\u044e\u0447",
             "\U0001f600", "x\x00y", "\ud800", "content-type", "correlation_id",
             "\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435", "k" * 300]
    texts = [t.encode().decode("unicode_escape") if "\\" in t else t for t in texts]
    bodies = [b"", b"hello", b"\x00\xff\x89BIN", b'{"a": 1}', "\u00e9t\u00e9".encode(), bytes(range(256))]
    cases = []

    writable = [t for t in texts if t != "\ud800"]  # Python cannot .encode() it

    def headers(n, pool=writable):
        dup = rnd.choice([1, 7, 1000])  # repeated keys, or none
        return {rnd.choice(pool)[:3] + str(i % dup if dup > 1 else i): rnd.choice(pool) for i in range(n)}

    for i in range(a.count):
        kind = i % 6
        body = rnd.choice(bodies)
        if kind == 0:
            n = rnd.choice([0, 1, 2, 5, 70, 300])
            ascii_only = [t for t in writable if t.isascii()]
            cases.append(v1_encode(headers(n, ascii_only if n > 5 else writable), body))
        elif kind == 1:
            ct = rnd.choice(["text/plain", None, "", 0, 1, 0.0, 1e-400, 2.5e-324, [], [0], {}, True, False, "\ud800"])
            b = body.hex()
            b = rnd.choice([b, b.upper(), " ".join(b[j:j + 2] for j in range(0, len(b), 2)), b + "0", b + "zz", 5, None])
            cases.append(json.dumps({"b": b, "ct": ct}).encode())
        elif kind == 2:
            h = rnd.choice([{}, None, [], "x", 3, headers(3, texts), {"n": 1, "o": {"a": [1, None]}, "f": float("nan")}])
            d = {"data": body.decode("latin-1") if rnd.random() < 0.8 else 5, "headers": h}
            if rnd.random() < 0.3:
                del d["headers"]
            cases.append(json.dumps(d, ensure_ascii=rnd.random() < 0.5).encode("utf-8", "surrogatepass"))
        elif kind == 3:
            cases.append(rnd.choice([b"", b"{", b"{}", b"[]", b"{not json", b"\xef\xbb\xbf{\"data\": \"x\"}",
                                     b'{"b": "00", "data": "x"}', b'{"data": "\\ud83d\\ude00"}',
                                     b'{"data": "\\ud83d"}', b'{"data": "x", "headers": {"a": NaN}}',
                                     b'{"b": "\\u0030\\u0031"}', b'{"b": "0 1"}', b'{"b": " 01 "}',
                                     b'{"b": "01", "ct": -0.0e5}', b'{"b": "01", "ct": "\\u0000"}']))
        else:
            cases.append(v1_encode(headers(rnd.choice([1, 3])), body))
    out = []
    for c in cases:
        out.append(c)
        for _ in range(a.mutations):
            m = bytearray(c)
            for _ in range(rnd.randint(1, 3)):
                op = rnd.randrange(4)
                pos = rnd.randrange(len(m) + 1)
                if op == 0 and m:
                    m[min(pos, len(m) - 1)] = rnd.randrange(256)
                elif op == 1:
                    m[pos:pos] = bytes([rnd.choice([0, 0x7b, 0x22, 0xc3, 0xff, rnd.randrange(256)])])
                elif op == 2 and m:
                    del m[min(pos, len(m) - 1)]
                else:
                    m = m[:pos]
            out.append(bytes(m))
    os.makedirs(a.dir, exist_ok=True)
    for i, c in enumerate(out):
        with open(os.path.join(a.dir, f"case{i:05d}"), "wb") as f:
            f.write(c)
    print(f"cases={len(out)}")
    return 0


def _nesting(data):
    depth = best = 0
    for ch in data:
        if ch in b"[{":
            depth += 1
            best = max(best, depth)
        elif ch in b"]}":
            depth -= 1
    return best


def _compare(py, c):
    want = {"deliver": 0, "drop": 1, "stuck": 2}[py[0]]
    if c["python"] != want:
        return f"python outcome {py[0]}, C {c['python']}"
    if py[0] != "deliver":
        return None
    _, body, headers, _, _ = py
    if bytes.fromhex(c["body"]) != body:
        return f"body {body!r} != C {bytes.fromhex(c['body'])!r}"
    keep, dropped = [], 0
    for k, v in headers.items():
        if not isinstance(v, str):
            keep.append((k, v))
        elif "\x00" in k + v or any(0xD800 <= ord(ch) <= 0xDFFF for ch in k + v):
            dropped += 1
        else:
            keep.append((k, v))
    got = [(bytes.fromhex(k).decode(), bytes.fromhex(v).decode()) for k, v in c["headers"]]
    if dropped != c["dropped"] or len(keep) != len(got):
        return f"headers {headers!r} (dropped {dropped}) != C {got} (dropped {c['dropped']})"
    for (k, v), (ck, cv) in zip(keep, got):
        same = v == cv if isinstance(v, str) else _same_json(v, cv)
        if k != ck or not same:
            return f"header {k!r}={v!r} != C {ck!r}={cv!r}"
    return None


def _same_json(v, text):
    try:
        w = json.loads(text)
    except ValueError:
        return False
    return repr(w) == repr(v)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--redis", default="127.0.0.1:6379")
    p.add_argument("--timeline", default="timers_timeline")
    p.add_argument("--payloads", default="timers_payloads")
    p.add_argument("--prefix", default="", help="a TimersRouter prefix")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("publish")
    s.add_argument("--topic", required=True)
    s.add_argument("--id", default="", help="hex; default str(uuid4())")
    s.add_argument("--kind", choices=["none", "bytes", "text", "json"], default="bytes")
    s.add_argument("--body", default="", help="hex")
    s.add_argument("--header", action="append", help="khex:vhex")
    s.add_argument("--correlation-id")
    s.add_argument("--delay", type=float, default=0.0)
    s.add_argument("--at", type=float)
    s.add_argument("--legacy", action="store_true", help="write the 0.x envelope")
    s.add_argument("--raw", help="hex: store these bytes as the payload")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--id-prefix", default="py-")
    for name in ("parse-stored", "claim", "ack", "cancel", "has-pending"):
        s = sub.add_parser(name)
        s.add_argument("--topic", required=True)
        s.add_argument("--id", required=True, help="hex")
        s.add_argument("--lease", type=int, default=30)
    s = sub.add_parser("consume")
    s.add_argument("--topic", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--lease", type=int, default=30)
    s.add_argument("--max-concurrent", type=int, default=5)
    s.add_argument("--nack", action="store_true")
    s.add_argument("--out")
    s = sub.add_parser("pending")
    s.add_argument("--topic", required=True)
    s.add_argument("--before", type=float)
    s = sub.add_parser("cancel-all")
    s.add_argument("--topic", required=True)
    s = sub.add_parser("due")
    s.add_argument("--topic", required=True)
    s.add_argument("--limit", type=int, default=100)
    s = sub.add_parser("check-decoder")
    s.add_argument("--dump", required=True)
    s.add_argument("--generate", type=int, default=0, help="gen-cases count")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("files", nargs="+")
    s = sub.add_parser("gen-cases")
    s.add_argument("dir")
    s.add_argument("--count", type=int, default=300)
    s.add_argument("--mutations", type=int, default=8)
    s.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.cmd == "check-decoder":
        return cmd_check_decoder(a)
    if a.cmd == "gen-cases":
        return cmd_gen_cases(a)
    host, _, port = a.redis.rpartition(":")
    client = redis.Redis(host=host, port=int(port), socket_timeout=5)
    store = Store(client, a.timeline, a.payloads)
    {
        "publish": cmd_publish, "parse-stored": cmd_parse_stored,
        "consume": cmd_consume, "claim": cmd_claim, "ack": cmd_ack,
        "cancel": cmd_ack,  # TimersBroker.cancel_timer is store.remove too
        "pending": cmd_pending, "has-pending": cmd_has_pending,
        "cancel-all": cmd_cancel_all, "due": cmd_due,
    }[a.cmd](store, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
