import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
from harness import SANITIZER_MARKERS, Bastion  # noqa: E402


@pytest.fixture
def bastion():
    b = Bastion().start()
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def make_bastion():
    made = []

    def make(**kw):
        b = Bastion(**kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def agents():
    """Agents (tests/pylib/agents.py) a test started: stopped after it.
    Under the sanitizer build their logs must hold no report either
    (LeakSanitizer runs at their exit)."""
    made = []
    yield made
    for a in made:
        a.stop()
    for a in made:
        for marker in SANITIZER_MARKERS:
            if marker in a.log():
                open("/tmp/agentlogs-%d.log" % os.getpid(), "a").write(a.log())
            assert marker not in a.log(), a.log()[-6000:]
