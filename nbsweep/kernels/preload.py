"""Preloading into a started kernel: the way a spare imports its ``preload`` modules when its kernel
cannot be forked from a zygote (``nbsweep.kernels.forking``, the usual way).

The spare's kernel, started as usual, imports the modules while it waits, so the run's own
``import`` finds them in ``sys.modules``. What the run sees is exactly a fresh kernel that
imported those modules first, and nothing else: the imports execute silently (``silent=True``:
no history, no ``In``/``Out`` entry, no output kept, the execution count does not move, so the
run's first cell is still ``[1]``), through ``__import__``, which binds no name in the user
namespace. A spare serves one run and dies, so no state of another run can leak. Warnings raised
while importing are not shown again in the run, as for any module imported before it. This
takes the imports off the run's path but not off the machine: each kernel still pays them.
"""

import asyncio

TIMEOUT = 300  # seconds an import may take before the spare gives up and starts a plain kernel


def code(modules: tuple[str, ...]) -> str:
    """Statements importing ``modules`` (dotted names included) without binding any name."""
    return "\n".join(f"__import__({name!r})" for name in modules)


def into(kernel, modules: tuple[str, ...], timeout: float = TIMEOUT) -> str | None:
    """Import ``modules`` in ``kernel`` (a ``kernels.Kernel``) silently; None once done, else why not."""
    from jupyter_core.utils import run_sync

    client = kernel.manager.client()
    client.start_channels()
    try:
        return run_sync(_import)(client, code(modules), timeout)
    except Exception as err:  # noqa: BLE001 -- the kernel died or hung: the spare falls back to a plain kernel
        return f"{type(err).__name__}: {err}".strip()
    finally:
        client.stop_channels()


async def _import(client, source: str, timeout: float) -> str | None:
    await client.wait_for_ready(timeout=timeout)
    msg_id = client.execute(source, silent=True, store_history=False, allow_stdin=False)
    async with asyncio.timeout(timeout):
        while True:
            reply = await client.get_shell_msg()
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    content = reply["content"]
    if content["status"] == "ok":
        return None
    return f"{content.get('ename', 'error')}: {content.get('evalue', '')}"


def failure_note(modules: tuple[str, ...], why: str) -> str:
    """The one line a run gets when its spare could not preload (the run name is put in front)."""
    return f"could not preload {', '.join(modules)} ({why}); it runs on a fresh kernel without them"
