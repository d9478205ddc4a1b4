"""SIGTERM as Ctrl-C, the graceful stop of a search's trials, and Ray's processes shielded from
a SIGTERM sent to the whole process group (real signals to this process and a child)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from studies.signals import (
    children_ignore_sigterm,
    graceful_stop,
    sigterm_as_interrupt,
    stop_requested,
)


def test_sigterm_raises_keyboard_interrupt_like_ctrl_c():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs between bytecodes, at once
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_asks_to_stop_the_second_stops_at_once(sig, capsys):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with graceful_stop("stopping") as stop:
        assert not stop.is_set() and not stop_requested()
        os.kill(os.getpid(), sig)
        time.sleep(0.1)
        assert stop.is_set() and stop_requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
            time.sleep(1)
    assert capsys.readouterr().err == "stopping\n"
    assert stop_requested()  # still readable after the block
    assert {s: signal.getsignal(s) for s in before} == before
    with graceful_stop():  # a new block starts unasked
        assert not stop_requested()


def test_children_started_in_the_block_ignore_sigterm():
    with children_ignore_sigterm():
        shielded = subprocess.Popen(["sleep", "30"])
    plain = subprocess.Popen(["sleep", "30"])
    try:
        for proc in (shielded, plain):
            proc.send_signal(signal.SIGTERM)
        assert plain.wait(timeout=10) == -signal.SIGTERM
        time.sleep(0.5)
        assert shielded.poll() is None  # SIGTERM pending, not delivered
        with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)  # this process's own mask was restored
            time.sleep(1)
    finally:
        shielded.kill()
        shielded.wait(timeout=10)
