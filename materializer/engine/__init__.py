"""The slot engine: the slot rules (docs/rules.md) as pure functions. No I/O, no
database imports (an import-linter contract keeps it so).

Materialization, on-demand computation, the confirm-time re-check and `explain` all call
these functions; nothing else decides what a slot is. One module per idea:

- ``zones``: wall-clock windows on local dates as instants, exactly, across DST;
- ``recurrence``: on which dates a recurring (RRULE) row applies;
- ``windows``: a staff member's merged working windows;
- ``capacity``: group sessions and seats, resources, booking limits, travel;
- ``grid``: candidates on each window's grid, kept when free and within capacity, marked
  under live holds;
- ``explain``: every reason a start is or is not offered.
"""

from slotmill.materializer.engine.explain import explain
from slotmill.materializer.engine.grid import SlotRun, compute_slots, generate_slots, slot_runs
from slotmill.materializer.engine.windows import merged_windows
from slotmill.materializer.engine.zones import local_date_of

__all__ = [
    "SlotRun",
    "compute_slots",
    "explain",
    "generate_slots",
    "local_date_of",
    "merged_windows",
    "slot_runs",
]
