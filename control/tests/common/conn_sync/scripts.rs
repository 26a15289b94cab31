//! Python programs of the connection-sync tests: a line echo server for the
//! backends and a client keeping many long-lived connections busy.

/// argv: PORT ADDRESS. Echoes every line back on the connection it came in
/// on, for as long as the peer keeps it; prints `ready` once listening on
/// ADDRESS (`::` takes IPv4 and IPv6). asyncio: one process carries
/// hundreds of connections without a thread each.
pub const ECHO_SERVER: &str = r#"
import asyncio, sys
port, address = int(sys.argv[1]), sys.argv[2]
async def serve(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, address, port, backlog=1024, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"#;

/// argv: HOST PORT N DIR. Opens N TCP connections to HOST:PORT (all of
/// them before it prints `ready`, after each has had its first echo). On
/// each it sends the line `<conn> <seq>\n`, waits for its echo, and sends
/// the next one 100 ms after the previous one left (at once if the echo
/// took longer). Per connection it counts echoes that match (`ok`), that
/// do not (`wrong`) and its end: a reset or an EOF (`resets`; the
/// connection is then dead and stays so) or another error (`errors`).
///
/// It takes requests through DIR: the caller writes `DIR/req` (atomically,
/// by rename) as `ID report` or `ID mark NAME`; the client removes it and
/// answers in `DIR/rep-ID.json`. `mark NAME` starts window NAME: from then
/// on the report gives, for that window, how many connections had an echo,
/// the echoes, wrong echoes and resets, and the longest wait for an echo
/// that arrived in the window (a wait is the time from sending a line to
/// its echo, so an outage lengthens the wait it ends). Every report also
/// gives the longest wait still going on and how many connections have
/// waited over a second (`stalled`). Once `DIR/stop`
/// exists it writes `DIR/final.json` and exits.
pub const ECHO_CLIENT: &str = r#"
import asyncio, errno, json, os, sys, time
host, port, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
now = time.monotonic
class Window:
    def __init__(self):
        self.conns = set(); self.ok = 0; self.wrong = 0; self.resets = 0; self.max_wait = 0.0
    def json(self):
        return {"ok_conns": len(self.conns), "ok": self.ok, "wrong": self.wrong,
                "resets": self.resets, "max_wait_ms": round(self.max_wait * 1000)}
windows = {}
opened, alive, first_echo, dead = 0, 0, set(), set()
ok, wrong, resets, max_wait = 0, 0, 0, 0.0
errors = {}
pending = {}
def failed(i, kind, reset):
    global alive, resets
    alive -= 1
    dead.add(i)
    pending.pop(i, None)
    errors[kind] = errors.get(kind, 0) + 1
    if reset:
        resets += 1
        for w in windows.values():
            w.resets += 1
async def conn(i, opened_ev):
    global opened, alive, ok, wrong, max_wait
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, asyncio.TimeoutError) as e:
        errors["open: " + type(e).__name__] = errors.get("open: " + type(e).__name__, 0) + 1
        opened_ev.set()
        return
    opened += 1; alive += 1
    opened_ev.set()
    seq = 0
    try:
        while True:
            line = ("%d %d\n" % (i, seq)).encode()
            sent = now()
            pending[i] = sent
            writer.write(line)
            await writer.drain()
            got = await reader.readline()
            if not got or not got.endswith(b"\n"):
                failed(i, "eof", True)
                return
            t = now(); wait = t - sent
            del pending[i]
            if got == line:
                ok += 1; max_wait = max(max_wait, wait); first_echo.add(i)
                for w in windows.values():
                    w.ok += 1; w.conns.add(i); w.max_wait = max(w.max_wait, wait)
            else:
                wrong += 1
                for w in windows.values():
                    w.wrong += 1
            seq += 1
            await asyncio.sleep(max(0.0, sent + 0.1 - now()))
    except (ConnectionResetError, BrokenPipeError) as e:
        failed(i, type(e).__name__, True)
    except OSError as e:
        failed(i, errno.errorcode.get(e.errno, type(e).__name__), False)
def report():
    t = now()
    return {"n": n, "opened": opened, "alive": alive, "ok": ok, "wrong": wrong,
            "resets": resets, "errors": errors, "max_wait_ms": round(max_wait * 1000),
            "pending_max_ms": round(max((t - s for s in pending.values()), default=0.0) * 1000),
            "stalled": sum(1 for s in pending.values() if t - s > 1.0),
            "windows": {k: w.json() for k, w in windows.items()}}
def put(name, obj):
    tmp = os.path.join(d, "." + name)
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, os.path.join(d, name))
async def main():
    tasks = []
    # Open in steps of 20 so the SYNs do not come as one burst.
    for start in range(0, n, 20):
        evs = []
        for i in range(start, min(n, start + 20)):
            ev = asyncio.Event(); evs.append(ev)
            tasks.append(asyncio.ensure_future(conn(i, ev)))
        for ev in evs:
            await ev.wait()
        if opened < len(tasks):
            break
    while len(first_echo | dead) < opened:
        await asyncio.sleep(0.02)
    print("ready" if opened == n else "opened %d of %d: %s" % (opened, n, errors), flush=True)
    req, stop = os.path.join(d, "req"), os.path.join(d, "stop")
    while not os.path.exists(stop):
        if os.path.exists(req):
            with open(req) as f:
                words = f.read().split()
            os.remove(req)
            if len(words) >= 3 and words[1] == "mark":
                windows[words[2]] = Window()
            put("rep-%s.json" % words[0], report())
        await asyncio.sleep(0.02)
    put("final.json", report())
    os._exit(0)
asyncio.run(main())
"#;

/// argv: IFNAME SRC PORT SECONDS. Waits up to SECONDS for one UDP datagram
/// from address SRC to PORT seen on IFNAME, either way (a packet socket: it
/// only watches), and prints its UDP payload in hex, or exits 1 if none
/// came.
pub const CAPTURE_UDP: &str = r#"
import socket, struct, sys, time
ifname, src, port, secs = sys.argv[1], socket.inet_aton(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
# ETH_P_ALL: only those sockets see the frames the interface sends.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
end = time.monotonic() + secs
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        f = s.recv(65535)
    except socket.timeout:
        break
    if f[12:14] != b"\x08\x00":
        continue
    ip = f[14:]
    if len(ip) < 20 or ip[9] != 17 or ip[12:16] != src:
        continue
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    if len(udp) >= 8 and struct.unpack("!H", udp[2:4])[0] == port:
        print(udp[8:struct.unpack("!H", udp[4:6])[0]].hex(), flush=True)
        sys.exit(0)
sys.exit(1)
"#;

/// argv: DST PORT SRC PAYLOAD_HEX. Sends one UDP datagram with source
/// address SRC (any address: a raw socket builds the IP header), e.g. a
/// captured sync message replayed as if its sender sent it again.
pub const SEND_SPOOFED: &str = r#"
import socket, struct, sys
dst, port, src, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], bytes.fromhex(sys.argv[4])
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, (dst, 0))
print("sent", flush=True)
"#;

/// argv: DST PORT [SRC]. Sends hostile datagrams to a sync port: random
/// garbage of several sizes, an empty datagram, truncated headers, and
/// messages with a plausible header (magic, version, node id, sequence
/// number, timestamp, a record count matching the body) but an HMAC made
/// with a key the site does not use. With SRC, every datagram claims that
/// source address (a raw socket builds the IP header), e.g. a real peer's.
/// Prints `sent N`.
pub const HOSTILE_SYNC: &str = r#"
import hashlib, hmac, os, socket, struct, sys, time
dst, port = sys.argv[1], int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else None
if src:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
def send(b):
    global sent
    if src:
        udp = struct.pack("!HHHH", 40000, port, 8 + len(b), 0) + b
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + udp, (dst, 0))
    else:
        s.sendto(b, (dst, port))
    sent += 1
for size in (1, 7, 16, 64, 200, 512, 1400):
    for _ in range(5):
        send(os.urandom(size))
send(b"")
record = struct.pack("!BBBxIHIHIHIH6sHI", 0, 6, 1, 0x0a4d0002, 40000, 0x0a4d0065, 7100,
                     0x0a4d0165, 7100, 0, 0, b"\x02\x00\x00\x00\x00\x02", 1, 60000)
for node in (1, 2, 3):
    for seq in range(1, 6):
        head = b"VSYN" + struct.pack("!BBHQQH", 1, 0, node, seq, time.time_ns() // 1000, 4)
        body = head + record * 4
        mac = hmac.new(b"not the site's key, wrong", body, hashlib.sha256).digest()
        send(body + mac)
        send(body[:len(head) - 3])
        send(body + mac[:7])
print("sent", sent, flush=True)
"#;
