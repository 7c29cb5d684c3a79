"""The register's clock and its one timestamp form: 'YYYY-MM-DDTHH:MM:SS.mmmZ' (UTC, milliseconds)."""

from __future__ import annotations

import datetime as dt


def utc_stamp(moment: dt.datetime) -> str:
    """A timezone-aware datetime in the stored form."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_utc() -> str:
    """ISO-8601 UTC with milliseconds and Z."""
    return utc_stamp(dt.datetime.now(dt.UTC))


def seconds_ago_utc(seconds: float) -> str:
    """The moment `seconds` before now, in the stored form."""
    return utc_stamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds))


def seconds_since_utc(stamp: str) -> float:
    """Seconds from a stored timestamp to now (negative for a moment still to come)."""
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - moment).total_seconds()


def today() -> dt.date:
    """The real current date: the 60-day rule and future contract dates use it (RPT-028, RPT-035)."""
    return dt.date.today()


def normalise_ts(value: str) -> str:
    """A client's timestamp in the stored form, so that the two compare as strings; unparsable text as is."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return utc_stamp(parsed)
