"""A WebSocket server from Debian's python3-websockets, for tests/websocket_codec.rs.

Usage: ws_server.py MODE   (echo | fragment | ping | close)
  echo      sends every message back
  fragment  sends every message back in 3 frames
  ping      echoes, and pings every 100 ms (and drops a client that does not pong)
  close     echoes the first message, then closes with 1001 (going away)
Binds 127.0.0.1 on a free port and prints that port on stdout's first line.
"""
import asyncio
import sys

import websockets

MODE = sys.argv[1]


async def handler(ws, *_path):
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
    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=ping, ping_timeout=0.5, max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


asyncio.run(main())
