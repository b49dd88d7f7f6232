"""What a call cost: the model's prices per million tokens times the usage the provider reported."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from providers.base import Usage

MILLION = Decimal(1_000_000)
# Results store costs with 8 decimal places (a millionth of a cent is below any real price).
COST_QUANTUM = Decimal("0.00000001")


class Priced(Protocol):
    """Anything with prices per million tokens: an LLMModel, or a snapshot of one."""

    input_price_per_million: Decimal
    output_price_per_million: Decimal


Price = Decimal | str | int | float


def _decimal(value: Price) -> Decimal:
    # Through str, so a float price from a JSON snapshot (0.15) is 0.15, not 0.1499999999999999944...
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cost_from_prices(*, input_price_per_million: Price, output_price_per_million: Price, usage: Usage) -> Decimal:
    """Cost in the prices' currency, rounded to 8 places; a direction the provider did not report costs 0."""
    cost = (
        Decimal(usage.input_tokens or 0) * _decimal(input_price_per_million)
        + Decimal(usage.output_tokens or 0) * _decimal(output_price_per_million)
    ) / MILLION
    return cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def cost_for(model: Priced, usage: Usage) -> Decimal:
    """The cost of one call to `model` with `usage`, as a Decimal (e.g. for TestResult.cost)."""
    return cost_from_prices(
        input_price_per_million=model.input_price_per_million,
        output_price_per_million=model.output_price_per_million,
        usage=usage,
    )
