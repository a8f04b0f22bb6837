"""Slow starts made visible: run a blocking call while showing each status step with its elapsed time."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from console import ui
from console.client import ApiError, ParadyzeClient

T = TypeVar("T")
# What each status means to someone waiting for an agent: the steps of a start.
STEP_WORDS = {
    "provisioning": "provisioning (placing the agent and its files)",
    "waking": "starting (the agent's server is booting)",
    "running": "answering (it passed its health check)",
    "hibernating": "stopping",
    "hibernated": "hibernated",
    "error": "failed",
}
_POLL_S = 0.5


def follow(
    client: ParadyzeClient,
    title: str,
    call: Callable[[], T],
    agent_id: Callable[[], str | None],
) -> T:
    """Run `call` in a worker thread; meanwhile list the agent's status steps as they happen.

    `agent_id` says which agent to watch (it may be None until a create has recorded the agent).
    The call's result is returned and its ApiError re-raised, after the box says how it ended.
    """
    started = time.monotonic()
    seen: set[str | int | None] = set()
    with st.status(title, expanded=True) as box, concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(call)
        clock = st.empty()
        while True:
            done = future.done() or _wait(future)
            watched = agent_id()
            if watched:
                _show_new_steps(client, watched, seen, started)
            clock.caption(f"{time.monotonic() - started:.1f} s elapsed")
            if done:
                break
        try:
            result = future.result()
        except ApiError:
            box.update(label=f"{title} failed after {time.monotonic() - started:.1f} s", state="error")
            raise
        box.update(label=f"{title} done in {time.monotonic() - started:.1f} s", state="complete", expanded=False)
    return result


def _wait(future: concurrent.futures.Future[object]) -> bool:
    try:
        future.exception(timeout=_POLL_S)
    except concurrent.futures.TimeoutError:
        return False
    return True


def _show_new_steps(client: ParadyzeClient, agent_id: str, seen: set[str | int | None], started: float) -> None:
    try:
        events = client.agent_events(agent_id, limit=20)
    except ApiError:
        return  # the steps are a courtesy; the call itself reports what matters
    for event in sorted(events, key=lambda e: e.at):
        key = event.id if event.id is not None else f"{event.at}{event.to_status}"
        if key in seen:
            continue
        seen.add(key)
        if event.at.timestamp() < time.time() - (time.monotonic() - started) - 1:
            continue  # from before this action
        words = STEP_WORDS.get(event.to_status or "", event.to_status or "")
        st.write(f"{ui.badge(event.to_status)} — {words} · {time.monotonic() - started:.1f} s")
