"""CronJob schedules: parsing as upstream's ParseStandard, next start times in time zones
(daylight-saving jumps included), and the missed-start arithmetic of mostRecentScheduleTime."""
from __future__ import annotations

import datetime as dt

import pytest

from kubelite.api.cronschedule import (
    Missed,
    ScheduleError,
    load_zone,
    most_recent_schedule_time,
    next_schedule_delay,
    parse_schedule,
)

UTC = dt.UTC


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


@pytest.mark.parametrize("schedule,zone,after,want", [
    ("*/1 * * * *", None, "2026-01-01T00:00:30+00:00", "2026-01-01T00:01:00+00:00"),
    ("0 * * * *", None, "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"),
    ("@hourly", None, "2026-01-01T10:59:59+00:00", "2026-01-01T11:00:00+00:00"),
    ("@daily", None, "2026-01-01T10:00:00+00:00", "2026-01-02T00:00:00+00:00"),
    ("@weekly", None, "2026-01-01T10:00:00+00:00", "2026-01-04T00:00:00+00:00"),   # the next Sunday
    ("@monthly", None, "2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00"),
    ("@yearly", None, "2026-01-15T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ("30 6-16/4 * * 1-5", None, "2026-01-02T15:00:00+00:00", "2026-01-05T06:30:00+00:00"),  # Fri → Mon
    ("0 9 * * MON", None, "2026-01-01T00:00:00+00:00", "2026-01-05T09:00:00+00:00"),
    ("0 0 1 JAN ?", None, "2026-03-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    ("0 9 * * *", "America/New_York", "2026-01-10T00:00:00+00:00", "2026-01-10T14:00:00+00:00"),
    ("0 9 * * *", "America/New_York", "2026-07-10T00:00:00+00:00", "2026-07-10T13:00:00+00:00"),
    # Spring forward (8 March 2026, 02:00 → 03:00 local): 02:30 does not exist that day.
    ("30 2 * * *", "America/New_York", "2026-03-08T05:00:00+00:00", "2026-03-09T06:30:00+00:00"),
    ("0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00+00:00", "2026-01-01T18:30:00+00:00"),
    ("0 12 * * *", "Europe/Berlin", "2026-06-01T00:00:00+00:00", "2026-06-01T10:00:00+00:00"),
    ("@every 90s", None, "2026-01-01T00:00:00.5+00:00", "2026-01-01T00:01:30+00:00"),
])
def test_next_schedule_time(schedule, zone, after, want):
    z = load_zone(zone)
    assert z is not None
    assert parse_schedule(schedule).next(t(after), z) == t(want)


@pytest.mark.parametrize("schedule,message", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 5x", 'failed to parse duration 5x: time: invalid duration "5x"'),
])
def test_schedule_syntax_errors(schedule, message):
    with pytest.raises(ScheduleError) as e:
        parse_schedule(schedule)
    assert str(e.value) == message


@pytest.mark.parametrize("schedule", ["61 * * * *", "* 24 * * *", "* * 32 * *", "* * * 13 *", "x * * * *"])
def test_out_of_range_fields_are_rejected(schedule):
    with pytest.raises(ScheduleError):
        parse_schedule(schedule)


def test_local_zone_follows_tz(monkeypatch):
    from kubelite.api.cronschedule import local_zone
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert str(local_zone()) == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "Nowhere/Atall")
    assert local_zone() is UTC


def test_unknown_time_zones_do_not_load():
    assert load_zone("Mars/Olympus") is None
    assert load_zone(None) is UTC and load_zone("") is UTC


# (created, last scheduled, now, startingDeadlineSeconds) → (most recent start, missed)
HOURLY = parse_schedule("0 * * * *")


@pytest.mark.parametrize("created,last,now,deadline,want,missed", [
    # Created 10:30, now 10:59: nothing due yet.
    ("10:30", None, "10:59", None, None, Missed.NONE),
    # One start due: 11:00 (now before the following one).
    ("10:30", None, "11:05", None, "11:00", Missed.NONE),
    # Three hours later: the most recent of the missed starts, a few missed.
    ("10:30", None, "13:05", None, "13:00", Missed.FEW),
    # Last scheduled 11:00, now 11:30: nothing new.
    ("10:30", "11:00", "11:30", None, None, Missed.NONE),
    # A deadline of 10 minutes hides the starts older than now-10m: from 12:55, 13:00 is next.
    ("10:30", None, "13:05", 600, "13:00", Missed.NONE),
    # A deadline of 10 minutes at 13:15: the window 13:05-13:15 holds no start.
    ("10:30", None, "13:15", 600, None, Missed.NONE),
])
def test_most_recent_schedule_time(created, last, now, deadline, want, missed):
    def at(hm: str) -> dt.datetime:
        return t(f"2026-01-01T{hm}:00+00:00")
    _, recent, got_missed = most_recent_schedule_time(
        created=at(created), last_scheduled=at(last) if last else None, now=at(now), schedule=HOURLY, zone=UTC,
        starting_deadline=deadline)
    assert recent == (at(want) if want else None)
    assert got_missed is missed


def test_more_than_100_missed_starts_are_many():
    every_minute = parse_schedule("* * * * *")
    created = t("2026-01-01T00:00:00+00:00")
    _, recent, missed = most_recent_schedule_time(created=created, last_scheduled=None,
                                                  now=created + dt.timedelta(minutes=150, seconds=5),
                                                  schedule=every_minute, zone=UTC, starting_deadline=None)
    assert recent == created + dt.timedelta(minutes=150)
    assert missed is Missed.MANY


def test_impossible_dates_are_an_error():
    # 30 February never comes: croniter refuses, as upstream refuses to schedule it.
    with pytest.raises(ScheduleError):
        sched = parse_schedule("0 0 30 2 *")
        most_recent_schedule_time(created=t("2026-01-01T00:00:00+00:00"), last_scheduled=None,
                                  now=t("2026-06-01T00:00:00+00:00"), schedule=sched, zone=UTC,
                                  starting_deadline=None)


def test_requeue_lands_just_after_the_next_start():
    created = t("2026-01-01T10:30:00+00:00")
    delay = next_schedule_delay(created=created, last_scheduled=None, now=t("2026-01-01T10:59:00+00:00"),
                                schedule=HOURLY, zone=UTC)
    assert delay == pytest.approx(60.1)
