#!/usr/bin/env python3
"""A TLS client we did not write (Python's ssl module is OpenSSL), for checking
loadmux's built-in TLS server. Connects (TCP or Unix), does the handshake against
--cafile, sends --send, reads until --read bytes arrived or the server closed, then
says close_notify and waits for the server's. Prints one JSON object:
  handshake: "ok" | "timeout" | "eof" | "error: ..."
  received:  what was read (latin-1 text)
  end:       how reading stopped: "enough" | "close_notify" | "eof" | "reset" | "timeout"
  goodbye:   after our close_notify: "close_notify" (the server answered) | "..." (it did not)
  ms:        milliseconds from sending to the last byte read
Every step is bounded by --timeout seconds."""
import argparse, json, socket, ssl, time

p = argparse.ArgumentParser()
p.add_argument("--connect")
p.add_argument("--unix")
p.add_argument("--cafile", required=True)
p.add_argument("--name", default="localhost")
p.add_argument("--send", default="")
p.add_argument("--read", type=int, default=0)
p.add_argument("--timeout", type=float, default=5.0)
p.add_argument("--cert")
p.add_argument("--key")
a = p.parse_args()

out = {"handshake": None, "received": "", "end": None, "goodbye": None, "ms": None}
ctx = ssl.create_default_context(cafile=a.cafile)
if a.cert:
    ctx.load_cert_chain(a.cert, a.key)
if a.unix:
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(a.timeout)
    raw.connect(a.unix)
else:
    host, port = a.connect.rsplit(":", 1)
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=a.timeout)
raw.settimeout(a.timeout)
try:
    # Ragged EOFs raise, so a close without close_notify is told apart from one with.
    tls = ctx.wrap_socket(raw, server_hostname=a.name, suppress_ragged_eofs=False)
    out["handshake"] = "ok"
    out["version"] = tls.version()
    out["alpn"] = tls.selected_alpn_protocol()
except socket.timeout:
    out["handshake"] = "timeout"
except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
    out["handshake"] = "eof"
except ssl.SSLError as e:
    out["handshake"] = "error: " + str(e)
if out["handshake"] != "ok":
    print(json.dumps(out))
    raise SystemExit(0)

got = b""
start = time.monotonic()
try:
    tls.sendall(a.send.encode("latin-1"))
    while len(got) < a.read:
        chunk = tls.recv(65536)
        if not chunk:
            out["end"] = "close_notify"
            break
        got += chunk
    else:
        out["end"] = "enough"
except ssl.SSLEOFError:
    out["end"] = "eof"  # The socket closed without close_notify.
except (ConnectionResetError, BrokenPipeError):
    out["end"] = "reset"
except socket.timeout:
    out["end"] = "timeout"
except ssl.SSLError as e:
    out["end"] = "error: " + str(e)  # An alert, e.g. a certificate the server required.
out["ms"] = round((time.monotonic() - start) * 1000, 1)
out["received"] = got[: a.read].decode("latin-1")
if out["end"] == "enough":
    try:
        tls.unwrap()  # Sends close_notify and waits for the server's.
        out["goodbye"] = "close_notify"
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        out["goodbye"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
