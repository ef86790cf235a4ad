"""A TCP proxy on 127.0.0.1 that holds every chunk back a fixed time each way: a remote store's
round trip (``delay`` seconds added to each request's answer) on this machine, for bench/bench_cache.py --s3."""

import asyncio
import threading
import time


class LatencyProxy:
    """Forwards 127.0.0.1:``port`` to ``host``:``target_port``, each chunk ``delay`` / 2 seconds late
    each way (chunks keep their order and the throughput stays the link's)."""

    def __init__(self, host: str, target_port: int, delay: float):
        self.host, self.target_port, self.delay = host, target_port, delay
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._connect, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _connect(self, client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection(self.host, self.target_port)
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer), return_exceptions=True)

    async def _pipe(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def send() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(send())
        try:
            while data := await reader.read(1 << 16):
                queue.put_nowait((time.monotonic() + self.delay / 2, data))
        finally:
            queue.put_nowait(None)
            await sender
