"""Bounds on what one recompute may cost: time for code that is not ours, and slots.

Our own loops check the slot count as they go. python-dateutil's recurrence search is not
ours and does not yield while it searches (a daily rule whose BY parts never match is
searched up to year 9999: seconds), so it runs under :func:`time_limit`, which raises
:class:`BudgetExceeded` inside the searching thread once the time is up.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from slotmill.materializer.model import RuleError

# A recurrence that takes longer than this to expand is refused (legitimate ones take
# milliseconds; the expansion is cached, so this is paid once per rule and horizon).
RECURRENCE_SECONDS = 2.0
# Slots one staff member may have in one recompute: a 5-minute grid, 24/7, for 366 days
# is 105,408 per service; beyond this a rule is almost certainly a mistake.
MAX_SLOTS_PER_STAFF = 250_000


class BudgetExceeded(RuleError):
    """A computation took more than its budget (time or slots)."""


class _Expired(BaseException):
    # BaseException: nothing between the raise point and time_limit() may swallow it.
    pass


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Run the block for at most ``seconds``; then :class:`BudgetExceeded` naming ``what``.

    A timer thread raises an exception asynchronously in this thread (CPython delivers it
    at the next bytecode). ``active`` under the lock makes sure it is never raised after
    the block has been left.
    """
    target = threading.get_ident()
    lock = threading.Lock()
    active = [True]

    def expire() -> None:
        with lock:
            if active[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(_Expired))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except _Expired:
        raise BudgetExceeded(f"{what}: took longer than {seconds:g} s") from None
    finally:
        with lock:
            active[0] = False
        timer.cancel()
