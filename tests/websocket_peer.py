#!/usr/bin/python3
"""A WebSocket echo server and client built on Debian's python3-websockets (a
WebSocket implementation loadmux did not write), for the record and replay tests.

  websocket_peer.py server          listen on 127.0.0.1:0, print "listening PORT",
                                    echo every message; on SIGTERM print
                                    "handshakes H messages M" and exit
  websocket_peer.py client URL N    send N text messages, check each echo, close
                                    cleanly, print "ok N"
"""
import asyncio
import signal
import sys

import websockets


async def serve():
    counts = {"handshakes": 0, "messages": 0}

    async def echo(ws, path=None):
        # Called once the opening handshake has been accepted.
        counts["handshakes"] += 1
        try:
            async for message in ws:
                counts["messages"] += 1
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass  # A replayed session ends however its recording ended.

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await stop
    print("handshakes", counts["handshakes"], "messages", counts["messages"], flush=True)


async def client(url, n):
    async with websockets.connect(url) as ws:
        for i in range(n):
            message = f"message {i}"
            await ws.send(message)
            echoed = await ws.recv()
            assert echoed == message, (echoed, message)
    print("ok", n, flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["server"]:
        asyncio.run(serve())
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 4:
        asyncio.run(client(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(__doc__)
