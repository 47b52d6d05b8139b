"""How often the file sensors and the automation sensor look: the settings that trade
drop-to-mart latency for load (each evaluation loads nothing new but costs a daemon tick).

Read from the environment when the code location loads; ``make dev`` keeps the defaults.
"""

from __future__ import annotations

import os


def interval_seconds(name: str, default: int) -> int:
    """The positive whole number of seconds in the environment variable ``name``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of seconds, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1 second, not {value}")
    return value


#: Seconds between two evaluations of a file sensor (new drops in the landing zone).
FILE_SENSOR_INTERVAL_SECONDS = interval_seconds("FILE_SENSOR_INTERVAL_SECONDS", 5)
#: Seconds between two automation ticks (dbt models whose upstream raw data changed).
AUTOMATION_INTERVAL_SECONDS = interval_seconds("AUTOMATION_INTERVAL_SECONDS", 10)
