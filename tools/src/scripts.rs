//! Python programs the lab runs inside its namespaces. `/usr/bin/python3` is
//! used explicitly so a user's pyenv or virtualenv cannot change behaviour.

pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// HTTP server for a backend or the sorry server.
///
/// argv: LAB NAME PORT... — LAB only tags the command line so stray processes
/// can be traced back to their lab. Every GET answers `NAME\n`, except
/// `/peer`, which answers `NAME IP:PORT\n` with the address the connection came
/// from (full NAT tests check the source the backend sees). Prints `ready`
/// once every port is bound so the caller can wait for it. No per-request
/// logging: under load it would only slow the server down.
pub(crate) const BACKEND_PY: &str = r#"
import http.server, socketserver, sys, threading

import socket
name, families = sys.argv[2], sys.argv[3]
ports = [int(p) for p in sys.argv[4:]]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == '/peer':
            body = '%s %s:%d\n' % (name, self.client_address[0], self.client_address[1])
        else:
            body = name + '\n'
        data = body.encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

# TCPServer rather than HTTPServer: HTTPServer resolves its own name through
# DNS at bind time, which can stall inside an isolated namespace. The default
# listen backlog of 5 would drop SYNs under burst load.
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

# An IPv6-only socket beside the IPv4 one, not a dual-stack socket: that
# would show IPv4 clients as ::ffff:a.b.c.d in /peer.
class Server6(Server):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

servers = [Server(('0.0.0.0', p), Handler) for p in ports]
if families == 'ipv4+ipv6':
    servers += [Server6(('::', p), Handler) for p in ports]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print('ready', flush=True)
servers[0].serve_forever()
"#;

/// Load generator: argv HOST PORT N CONCURRENCY. Issues N `GET /` requests,
/// each on a new TCP connection, from a pool of CONCURRENCY threads, each
/// request bounded by 2 s in total. Prints one JSON object:
/// `{"ok": .., "failed": .., "by_body": {body: count}, "errors": {kind: count}}`
/// where bodies are stripped of surrounding whitespace.
pub(crate) const BURST_PY: &str = r#"
import concurrent.futures, errno, json, socket, sys, time

host, port, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
request = ('GET / HTTP/1.0\r\nHost: %s:%d\r\n\r\n' % (host, port)).encode()

def one(_):
    deadline = time.monotonic() + 2.0
    def left():
        rest = deadline - time.monotonic()
        if rest <= 0:
            raise socket.timeout()
        return rest
    try:
        with socket.create_connection((host, port), timeout=left()) as s:
            s.settimeout(left())
            s.sendall(request)
            chunks = []
            while True:
                s.settimeout(left())
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
    except socket.timeout:
        return (False, 'timeout')
    except OSError as e:
        return (False, errno.errorcode.get(e.errno, type(e).__name__))
    head, sep, body = b''.join(chunks).partition(b'\r\n\r\n')
    if not sep:
        return (False, 'truncated response')
    status = head.split(b' ', 2)
    if len(status) < 2 or status[1] != b'200':
        return (False, 'http status ' + status[1].decode('ascii', 'replace') if len(status) > 1 else 'bad status line')
    return (True, body.decode('utf-8', 'replace').strip())

ok, failed, by_body, errors = 0, 0, {}, {}
with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as pool:
    for good, what in pool.map(one, range(n)):
        if good:
            ok += 1
            by_body[what] = by_body.get(what, 0) + 1
        else:
            failed += 1
            errors[what] = errors.get(what, 0) + 1
print(json.dumps({'ok': ok, 'failed': failed, 'by_body': by_body, 'errors': errors}))
"#;
