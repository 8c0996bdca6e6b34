"""Daily demand forecasts for one sku at one node, and the stock that covers them. Pure.

Most skus at most nodes sell on few days: averaging their days misleads in both directions.
The method follows the demand's pattern (Syntetos and Boylan's classification by the average
interval between demands, ADI, and the squared variation of the demand sizes, CV²):

- smooth or erratic (ADI < 1.32): simple exponential smoothing of the daily units;
- intermittent (ADI >= 1.32, CV² < 0.49): Croston's method with the Syntetos-Boylan correction,
  which smooths the sizes and the intervals apart;
- lumpy (ADI >= 1.32, CV² >= 0.49): TSB (Teunter, Syntetos and Babai), which smooths the
  probability of a demand day instead of the interval, so a sku that stopped selling fades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


@dataclass(frozen=True)
class Forecast:
    daily: float  # expected units per day
    sigma: float  # standard deviation of a day's units around it
    method: str


@dataclass(frozen=True)
class Cover:
    safety_stock: int
    reorder_point: int
    order_up_to: int


def forecast(history: Sequence[float], alpha: float = 0.2, beta: float = 0.1) -> Forecast:
    """The demand rate for the next days from ``history`` (units per day, oldest first)."""
    demands = [y for y in history if y > 0]
    if not history or not demands:
        return Forecast(0.0, 0.0, "none")
    # Its history starts with its first sale: the days before it was listed say nothing.
    history = history[next(k for k, y in enumerate(history) if y > 0) :]
    adi = len(history) / len(demands)
    mean = sum(demands) / len(demands)
    cv2 = (sum((y - mean) ** 2 for y in demands) / len(demands)) / mean**2
    if adi < ADI_CUTOFF:
        daily, method = ses(history, alpha), "ses"
    elif cv2 < CV2_CUTOFF:
        daily, method = croston_sba(history, alpha), "croston"
    else:
        daily, method = tsb(history, alpha, beta), "tsb"
    sigma = math.sqrt(sum((y - daily) ** 2 for y in history) / len(history))
    return Forecast(daily, sigma, method)


def ses(history: Sequence[float], alpha: float) -> float:
    level = history[0]
    for y in history[1:]:
        level += alpha * (y - level)
    return level


def croston_sba(history: Sequence[float], alpha: float) -> float:
    """Croston's size over interval, times (1 - alpha/2) for its known upward bias."""
    size: float | None = None
    interval = 1.0
    since = 0
    for y in history:
        since += 1
        if y <= 0:
            continue
        if size is None:
            size, interval = y, float(since)
        else:
            size += alpha * (y - size)
            interval += alpha * (since - interval)
        since = 0
    assert size is not None
    return (1 - alpha / 2) * size / interval


def tsb(history: Sequence[float], alpha: float, beta: float) -> float:
    """Probability of a demand day times the size of one, each smoothed every day."""
    first = next(k for k, y in enumerate(history) if y > 0)
    probability = 1.0 / (first + 1)
    size = history[first]
    for y in history[first + 1 :]:
        probability += beta * ((1.0 if y > 0 else 0.0) - probability)
        if y > 0:
            size += alpha * (y - size)
    return probability * size


def cover(f: Forecast, lead_days: float, review_days: float, service_level: float) -> Cover:
    """Safety stock for ``service_level`` over the lead time, the reorder point, and the level
    an order brings the node back up to (the lead time plus one review period of demand)."""
    z = NormalDist().inv_cdf(service_level)
    safety = z * f.sigma * math.sqrt(max(lead_days, 0.0))
    reorder = f.daily * lead_days + safety
    return Cover(
        safety_stock=math.ceil(safety),
        reorder_point=math.ceil(reorder),
        order_up_to=math.ceil(reorder + f.daily * review_days),
    )
