#!/usr/bin/env python3
"""A TCP proxy that holds each chunk a client sends for a fixed delay before
forwarding it: over keep-alive HTTP, every request waits that long, as over a
network. Usage: latency_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS"""
import asyncio
import sys

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pipe(reader, writer, wait):
    try:
        while data := await reader.read(1 << 16):
            if wait:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(
        pipe(client_reader, server_writer, True),
        pipe(server_reader, client_writer, False),
    )


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


asyncio.run(main())
