"""What a call cost, from the model's prices per million tokens and the provider's usage report."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from providers.base import Usage

if TYPE_CHECKING:
    from catalog.models import LLMModel

_QUANTUM = Decimal("0.00000001")  # TestResult.cost has eight decimal places
_MILLION = Decimal(1_000_000)


def call_cost(model: LLMModel, usage: Usage) -> Decimal:
    """Input and output tokens at the model's prices; unknown counts cost nothing rather than a guess."""
    input_cost = Decimal(usage.input_tokens or 0) * model.input_price_per_million
    output_cost = Decimal(usage.output_tokens or 0) * model.output_price_per_million
    return ((input_cost + output_cost) / _MILLION).quantize(_QUANTUM, rounding=ROUND_HALF_UP)
