//! Python programs the VRRP tests run inside the lab.

/// HTTP server answering every GET with argv[1].
pub const NAME_HTTP: &str = r#"
import http.server, socketserver, sys
body = (sys.argv[1] + "\n").encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
S(("0.0.0.0", 8080), H).serve_forever()
"#;

/// argv: HOST PORT SECONDS STOPFILE. Sends a numbered UDP probe every
/// 10 ms; a probe counts if its echo comes back within 250 ms. Prints `warm`
/// after 10 answered probes, runs until 2 s after STOPFILE appears (at most
/// SECONDS), and prints a JSON summary of the outages at the end. UDP
/// rather than a TCP request per probe: a connection in flight when the
/// master changes dies with the old master's flow state, which would add
/// the request's duration to the measured outage.
///
/// Every outage also says how long the host froze this whole machine
/// inside it: time every vCPU lost to steal (/proc/stat) at once. Nothing
/// in the lab runs then, client and nodes alike, so that part of an outage
/// is the host's, not vipd's.
pub const PROBER: &str = r#"
import json, os, select, socket, struct, sys, time
host, port, dur, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
tick = 1.0 / os.sysconf("SC_CLK_TCK")
def steal():
    with open("/proc/stat") as f:
        return [int(l.split()[8]) for l in f if l.startswith("cpu") and l[3].isdigit()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic(); next_t = start
sent = []; ok = set(); said = False
frozen = []; st, st_t = steal(), 0.0
while True:
    now = time.monotonic()
    if dur - (now - start) > 2.0 and os.path.exists(stop):
        dur = now - start + 2.0
    if now - start >= dur + 0.25:
        break
    cur = steal()
    lost_all = min(b - a for a, b in zip(st, cur)) * tick
    if lost_all > 0:
        frozen.append((st_t, now - start, lost_all))
    st, st_t = cur, now - start
    if now >= next_t and now - start < dur:
        s.sendto(struct.pack("!I", len(sent)), (host, port))
        sent.append(now - start)
        next_t = max(next_t + 0.01, now - 0.02)
    r, _, _ = select.select([s], [], [], max(0.0, min(next_t - time.monotonic(), 0.01)))
    if r:
        d, _ = s.recvfrom(2048)
        if len(d) >= 4:
            i = struct.unpack("!I", d[:4])[0]
            if i < len(sent) and time.monotonic() - start - sent[i] <= 0.25:
                ok.add(i)
                if not said and len(ok) >= 10:
                    print("warm", flush=True); said = True
def frozen_in(a, b):
    return sum(f * max(0.0, min(b, t1) - max(a, t0)) / max(t1 - t0, 1e-9) for t0, t1, f in frozen)
# An outage runs from the last answered probe before a run of unanswered
# ones to the first answered probe after it; a pause of the prober itself
# (nothing sent) is no outage.
outages, last, lost = [], None, False
for i, t in enumerate(sent):
    if i not in ok:
        lost = True
        continue
    if lost and last is not None:
        outages.append({"at_ms": round(last * 1000), "ms": round((t - last) * 1000),
                        "frozen_ms": round(min(frozen_in(last, t), t - last) * 1000)})
    last, lost = t, False
tail = dur - last if last is not None else dur
print(json.dumps({"sent": len(sent), "ok": len(ok), "tail_ms": round(tail * 1000),
                  "outages": outages}), flush=True)
"#;

/// UDP echo server on port argv[1].
pub const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
"#;

/// argv: VIP CLIENT_MAC MODE. Sends hostile VRRPv3 adverts for vrid 51
/// from the client: 5 of each kind, then (MODE flood) 10000 with a bad
/// checksum, as fast as a packet socket takes them.
pub const HOSTILE: &str = r#"
import socket, struct, sys
from scapy.all import Ether, IP, Raw
vip, mac, mode = sys.argv[1], sys.argv[2], sys.argv[3]
src = "10.77.0.2"
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def advert(vrid=51, prio=100, good=True, src=src):
    body = bytes([0x31, vrid, prio, 1]) + struct.pack("!H", 10) + b"\0\0" + socket.inet_aton(vip)
    pseudo = socket.inet_aton(src) + socket.inet_aton("224.0.0.18") + struct.pack("!BBH", 0, 112, len(body))
    c = csum(pseudo + body) ^ (0 if good else 0x5a5a)
    return body[:6] + struct.pack("!H", c) + body[8:]
def frame(payload, ttl=255, src=src):
    return bytes(Ether(src=mac, dst="01:00:5e:00:00:12") / IP(src=src, dst="224.0.0.18", ttl=ttl, proto=112) / Raw(payload))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
kinds = {
    "ttl": frame(advert(prio=200), ttl=64),
    "vrid": frame(advert(vrid=52, prio=200)),
    "checksum": frame(advert(prio=200, good=False)),
    "truncated": frame(advert(prio=200)[:6]),
    "owner": frame(advert(prio=255)),
}
for f in kinds.values():
    for _ in range(5):
        s.send(f)
if mode == "flood":
    f = frame(advert(prio=254, good=False))
    for _ in range(10000):
        s.send(f)
print("sent", flush=True)
"#;

/// argv: PID RELEASE_FILE. Stops every `vipd-worker-*` thread of PID with
/// ptrace (only those threads; the control plane keeps running), prints
/// `frozen`, and lets them go once RELEASE_FILE exists.
pub const FREEZE_WORKERS: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid, release = int(sys.argv[1]), sys.argv[2]
tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)
        if open("/proc/%d/task/%s/comm" % (pid, t)).read().startswith("vipd-worker")]
if not tids:
    sys.exit("no worker threads")
for t in tids:
    if libc.ptrace(0x4206, t, None, None) != 0:  # PTRACE_SEIZE
        sys.exit("seize %d: errno %d" % (t, ctypes.get_errno()))
    libc.ptrace(0x4207, t, None, None)  # PTRACE_INTERRUPT
    os.waitpid(t, 0x40000000)  # __WALL
print("frozen", len(tids), flush=True)
while not os.path.exists(release):
    time.sleep(0.01)
for t in tids:
    libc.ptrace(17, t, None, None)  # PTRACE_DETACH
print("released", flush=True)
"#;
