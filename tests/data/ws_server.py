"""A WebSocket server from Debian's python3-websockets, for tests/websocket_codec.rs
and tests/websocket.rs.

Usage: ws_server.py MODE   (echo | fragment | ping | close | headers | push)
  echo      sends every message back
  fragment  sends every message back in 3 frames
  ping      echoes, and pings every 100 ms (and closes, with 1011, the connection
            of a client that does not pong within 500 ms)
  close     echoes the first message, then closes with 1001 (going away)
  headers   echoes, accepts the subprotocol "chat", and prints one line per
            connection: "upgrade path=P protocol=S x-test=V"
  push      sends "tick N" every 10 ms, unasked; ignores what it receives
Binds 127.0.0.1 on a free port and prints that port on stdout's first line.
"""
import asyncio
import sys

import websockets

MODE = sys.argv[1]


async def handler(ws, path=None):
    if MODE == "headers":
        # websockets 10 (Debian 12) has request_headers and path; newer has request.
        request = getattr(ws, "request", None)
        headers = request.headers if request is not None else ws.request_headers
        path = request.path if request is not None else ws.path
        print(f"upgrade path={path} protocol={ws.subprotocol} x-test={headers.get('X-Test')}", flush=True)
    if MODE == "push":
        n = 0
        while True:
            await ws.send(f"tick {n}")
            n += 1
            await asyncio.sleep(0.01)
    async for message in ws:
        if MODE == "fragment":
            third = max(1, len(message) // 3)
            await ws.send([message[:third], message[third:2 * third], message[2 * third:]])
        else:
            await ws.send(message)
        if MODE == "close":
            await ws.close(code=1001, reason="going away")
            return


async def main():
    ping = 0.1 if MODE == "ping" else None
    protocols = ["chat"] if MODE == "headers" else None
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=ping, ping_timeout=0.5, max_size=2**24,
                                subprotocols=protocols) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


asyncio.run(main())
