"""kubelite.client.supervise: crashes are logged with a traceback and restarted with capped back-off."""
from __future__ import annotations

import asyncio
import logging

import pytest

from kubelite.client.supervise import supervise
from tests.fakeapi import until

LOGGER = "tests.supervise"


def crash_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]


async def test_a_crash_is_logged_with_its_traceback_and_restarted_with_doubling_capped_delays(caplog):
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 5:
            raise RuntimeError(f"crash {runs}")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await asyncio.wait_for(supervise("flaky", flaky, initial_delay=0.001, max_delay=0.004,
                                         logger=logging.getLogger(LOGGER)), 10)
    assert runs == 6  # the sixth run returned normally: supervision ended with it
    records = crash_records(caplog)
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == [f"crash {n}" for n in range(1, 6)]
    assert caplog.text.count("Traceback (most recent call last)") == 5 and "RuntimeError: crash 5" in caplog.text
    assert [r.args[1] for r in records if isinstance(r.args, tuple)] == [0.001, 0.002, 0.004, 0.004, 0.004]


async def test_a_run_that_was_healthy_for_a_while_restarts_after_the_initial_delay_again(caplog):
    now = [0.0]
    runs = 0

    async def crashes_four_times() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            now[0] += 100.0  # the third run lives long before it fails
        if runs <= 4:
            raise RuntimeError(f"crash {runs}")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        await asyncio.wait_for(supervise("aging", crashes_four_times, initial_delay=0.001, max_delay=0.004,
                                         logger=logging.getLogger(LOGGER), clock=lambda: now[0]), 10)
    assert [r.args[1] for r in crash_records(caplog) if isinstance(r.args, tuple)] == [0.001, 0.002, 0.001, 0.002]


async def test_cancelling_stops_a_supervised_run_cleanly_and_is_not_logged_as_a_crash(caplog):
    started = asyncio.Event()
    cleaned_up: list[bool] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        task = asyncio.create_task(supervise("forever", forever, logger=logging.getLogger(LOGGER)))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cleaned_up == [True]
    assert crash_records(caplog) == []


async def test_cancelling_during_the_back_off_does_not_restart(caplog):
    runs = 0

    async def crash() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        task = asyncio.create_task(supervise("crash", crash, initial_delay=3600, logger=logging.getLogger(LOGGER)))
        await until(lambda: crash_records(caplog), what="the crash to be logged")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert runs == 1


async def test_stop_ends_the_back_off_without_a_restart(caplog):
    runs = 0
    stop = asyncio.Event()

    async def crash() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        task = asyncio.create_task(supervise("crash", crash, stop=stop, initial_delay=3600,
                                             logger=logging.getLogger(LOGGER)))
        await until(lambda: crash_records(caplog), what="the crash to be logged")
        stop.set()
        await asyncio.wait_for(task, 10)
    assert runs == 1
