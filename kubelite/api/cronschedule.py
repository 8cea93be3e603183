"""CronJob schedules: parsing as upstream's ParseStandard accepts them, and their times.

A schedule is five cron fields (minute hour day-of-month month day-of-week, with names,
ranges, steps and ``?``), a descriptor (``@yearly``/``@annually``, ``@monthly``,
``@weekly``, ``@daily``/``@midnight``, ``@hourly``) or ``@every <Go duration>``.  The
five-field forms are evaluated by ``croniter`` in the CronJob's time zone (the system
tz database through ``zoneinfo``), so a daylight-saving jump skips or repeats exactly as
local wall-clock time does.  ``most_recent_schedule_time`` is upstream's arithmetic for
"which start did we miss, and how many": the controller is tested through it with a
fixed clock.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import zoneinfo
from dataclasses import dataclass
from enum import Enum
from typing import Any

from croniter import CroniterError, croniter

_UTC = _dt.UTC

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GAP_RETRIES = 4
# Past this many missed start times the controller warns instead of catching up.
MANY_MISSED = 100


class ScheduleError(ValueError):
    """A schedule upstream's parser would reject (the message is the validation detail)."""


def local_zone() -> _dt.tzinfo:
    """This machine's time zone, which a CronJob without ``timeZone`` is read in (as
    upstream reads it in kube-controller-manager's): ``$TZ``, else ``/etc/localtime``'s
    target, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
        except OSError:
            target = ""
        _, sep, name = target.partition("/zoneinfo/")
        if not sep:
            name = ""
    return load_zone(name) or _UTC


def load_zone(name: str | None, default: _dt.tzinfo = _UTC) -> _dt.tzinfo | None:
    """The tz database zone (``default`` for None or empty), or None when it does not exist."""
    if not name:
        return default
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _go_duration(text: str) -> float:
    pos, value = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        value += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ScheduleError(f'failed to parse duration {text}: time: invalid duration "{text}"')
    return value


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: five cron fields, or a fixed interval for ``@every``."""

    expr: str = ""
    every: float = 0.0

    def _wall_clock_matches(self, t: _dt.datetime) -> bool:
        """The local minute and hour are ones the fields name (not a gap-shifted time)."""
        minutes, hours = croniter(self.expr).expanded[:2]
        return _in_field(minutes, t.minute) and _in_field(hours, t.hour)

    def next(self, after: _dt.datetime, zone: _dt.tzinfo = _UTC) -> _dt.datetime:
        """The first activation strictly after ``after`` (returned in UTC)."""
        if self.every:
            # @every rounds the interval to whole seconds and starts from a whole second.
            step = max(1, round(self.every))
            base = after.astimezone(_UTC).replace(microsecond=0)
            return base + _dt.timedelta(seconds=step)
        base = after.astimezone(zone)
        # A start inside a daylight-saving gap (02:30 on the day clocks jump 02:00 →
        # 03:00) does not happen, as with upstream's parser: croniter moves it to the
        # gap's end (or gives up), so a time that does not match the fields is skipped
        # and the search goes on from there.  A date that never exists (30 February)
        # fails every retry.
        for _ in range(_GAP_RETRIES):
            try:
                nxt: _dt.datetime = croniter(self.expr, base).get_next(_dt.datetime)
            except CroniterError:
                base += _dt.timedelta(hours=1)
                continue
            if self._wall_clock_matches(nxt):
                return nxt.astimezone(_UTC)
            base = nxt
        raise ScheduleError(f"no time matches the schedule {self.expr!r}")


def _in_field(values: list[Any], v: int) -> bool:
    return values == ["*"] or v in values


def parse_schedule(text: str) -> Schedule:
    """Parse a CronJob schedule; ScheduleError with a parser-style message otherwise."""
    spec = text.strip()
    if spec.startswith("@every "):
        return Schedule(every=_go_duration(spec[len("@every "):].strip()))
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        return Schedule(expr=DESCRIPTORS[spec])
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    expr = " ".join(f.replace("?", "*") for f in fields)
    try:
        croniter(expr)
    except (CroniterError, ValueError, KeyError) as e:
        raise ScheduleError(str(e) or "invalid schedule") from None
    return Schedule(expr=expr)


class Missed(Enum):
    """How many start times went by unscheduled."""

    NONE = 0
    FEW = 1
    MANY = 2


def most_recent_schedule_time(*, created: _dt.datetime, last_scheduled: _dt.datetime | None, now: _dt.datetime,
                              schedule: Schedule, zone: _dt.tzinfo,
                              starting_deadline: int | None) -> tuple[_dt.datetime, _dt.datetime | None, Missed]:
    """(earliest time considered, the latest start time not after ``now`` or None, missed).

    ``starting_deadline`` (startingDeadlineSeconds, or None) moves the earliest time up to
    ``now - deadline``: older start times are not caught up.  The count of misses is
    estimated from the gap between two consecutive start times, as upstream does; a
    schedule whose two next times coincide (31 February) raises ScheduleError."""
    earliest = last_scheduled or created
    if starting_deadline is not None:
        deadline = now - _dt.timedelta(seconds=starting_deadline)
        if deadline > earliest:
            earliest = deadline
    t1 = schedule.next(earliest, zone)
    t2 = schedule.next(t1, zone)
    if now < t1:
        return earliest, None, Missed.NONE
    if now < t2:
        return earliest, t1, Missed.NONE
    gap = int(round((t2 - t1).total_seconds()))
    if gap < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed_count = int((now - t1).total_seconds()) // gap + 1
    recent: _dt.datetime | None = None
    t = schedule.next(t1 + _dt.timedelta(seconds=(missed_count - 2) * gap), zone)
    while t <= now:
        recent = t
        t = schedule.next(t, zone)
    missed = Missed.MANY if missed_count > MANY_MISSED else Missed.FEW if missed_count > 0 else Missed.NONE
    return earliest, recent, missed


def next_schedule_delay(*, created: _dt.datetime, last_scheduled: _dt.datetime | None, now: _dt.datetime,
                        schedule: Schedule, zone: _dt.tzinfo) -> float:
    """Seconds until the controller should look at the CronJob again (100 ms after the next start)."""
    try:
        earliest, recent, missed = most_recent_schedule_time(
            created=created, last_scheduled=last_scheduled, now=now, schedule=schedule, zone=zone,
            starting_deadline=None)
        if recent is None:
            recent = earliest if missed is Missed.NONE else now
    except ScheduleError:
        recent = now
    return (schedule.next(recent, zone) - now).total_seconds() + 0.1
