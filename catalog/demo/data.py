"""The demo catalog: offline mock models and tests across categories and every evaluation type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

JUDGE_MODEL_NAME = "mock-sage-judge"

DEMO_MODELS: list[dict[str, Any]] = [
    {
        "name": "mock-atlas-large",
        # Offline and free: contributors may try their pending tests on it (SPEC §11 sandbox).
        "sandbox": True,
        "display_name": "Atlas Large (mock)",
        "description": "Offline mock that answers about 90% of tests correctly. Not a real model.",
        "config": {"accuracy": 0.9, "latency_ms": 60},
        "input_price_per_million": Decimal("5.00"),
        "output_price_per_million": Decimal("15.00"),
        "supports_structured_output": True,
        "supports_json_mode": True,
        "context_length": 128000,
    },
    {
        "name": "mock-atlas-small",
        "sandbox": True,
        "display_name": "Atlas Small (mock)",
        "description": "Offline mock, about 70% correct, fast and cheap. Not a real model.",
        "config": {"accuracy": 0.7, "latency_ms": 20},
        "input_price_per_million": Decimal("0.15"),
        "output_price_per_million": Decimal("0.60"),
        "supports_json_mode": True,
        "context_length": 128000,
    },
    {
        "name": "mock-borealis",
        "sandbox": True,
        "display_name": "Borealis (mock)",
        "description": "Offline mock, about 80% correct. Not a real model.",
        "config": {"accuracy": 0.8, "latency_ms": 40},
        "input_price_per_million": Decimal("3.00"),
        "output_price_per_million": Decimal("15.00"),
        "supports_structured_output": True,
        "context_length": 200000,
    },
    {
        "name": "mock-cirrus-mini",
        "sandbox": True,
        "display_name": "Cirrus Mini (mock)",
        "description": "Offline mock, about 55% correct, occasionally fails. Not a real model.",
        "config": {"accuracy": 0.55, "latency_ms": 15, "error_rate": 0.05},
        "input_price_per_million": Decimal("0.10"),
        "output_price_per_million": Decimal("0.40"),
        "context_length": 32000,
    },
    {
        "name": "mock-delta-coder",
        "sandbox": True,
        "display_name": "Delta Coder (mock)",
        "description": "Offline mock, about 75% correct. Not a real model.",
        "config": {"accuracy": 0.75, "latency_ms": 30},
        "input_price_per_million": Decimal("0.90"),
        "output_price_per_million": Decimal("0.90"),
        "supports_json_mode": True,
        "context_length": 64000,
    },
    {
        "name": JUDGE_MODEL_NAME,
        "display_name": "Sage Judge (mock)",
        "description": "Offline mock used as the demo's LLM judge. Not a real model.",
        # A judge need not be ranked itself; inactive keeps it off the leaderboard and default runs. Sandbox: it may
        # judge tests that are not approved yet (the demo's pending "Plan a trip").
        "is_active": False,
        "sandbox": True,
        "config": {"accuracy": 0.95, "latency_ms": 10},
        "input_price_per_million": Decimal("1.00"),
        "output_price_per_million": Decimal("4.00"),
        "supports_structured_output": True,
        "supports_json_mode": True,
        "context_length": 128000,
    },
]

_PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
}
_INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["invoice_number", "total", "currency", "items"],
}


def _test(
    title: str, category: str, prompt: str, answer: Any, difficulty: str, evaluation_type: str, **extra: Any
) -> dict[str, Any]:
    """The fields every demo test has; the builders below add what their evaluation type needs."""
    return {
        "title": title,
        "category": category,
        "difficulty": difficulty,
        "prompt": prompt,
        "expected_output": answer,
        "evaluation_type": evaluation_type,
        **extra,
    }


def _exact(
    title: str, category: str, prompt: str, answer: Any, difficulty: str = "easy", **extra: Any
) -> dict[str, Any]:
    return _test(title, category, prompt, answer, difficulty, "exact_match", **extra)


def _custom(
    title: str, category: str, prompt: str, answer: Any, scorer: str, difficulty: str = "medium", **config: Any
) -> dict[str, Any]:
    tags = config.pop("tags", [])
    return _test(
        title, category, prompt, answer, difficulty, "custom", tags=tags, evaluation_config={"scorer": scorer, **config}
    )


def _structured(
    title: str,
    category: str,
    prompt: str,
    answer: Any,
    schema: dict[str, Any],
    difficulty: str = "medium",
    **config: Any,
) -> dict[str, Any]:
    return _test(
        title,
        category,
        prompt,
        answer,
        difficulty,
        "structured_match",
        output_schema=schema,
        evaluation_config=config,
        system_prompt="Answer with JSON only.",
    )


def _judged(
    title: str, category: str, prompt: str, reference: str, rubric: str, difficulty: str = "hard"
) -> dict[str, Any]:
    return _test(
        title,
        category,
        prompt,
        reference,
        difficulty,
        "llm_judge",
        evaluation_config={"judge_model": JUDGE_MODEL_NAME, "rubric": rubric, "pass_threshold": 0.7},
        timeout_seconds=120,
    )


DEMO_TESTS: list[dict[str, Any]] = [
    # geography
    _exact(
        "Capital of France",
        "geography",
        "What is the capital of France? Answer with one word.",
        "Paris",
        tags=["capitals"],
    ),
    _exact(
        "Capital of Japan",
        "geography",
        "What is the capital of Japan? Answer with one word.",
        "Tokyo",
        tags=["capitals"],
    ),
    _exact(
        "Largest ocean", "geography", "Which is the largest ocean on Earth? Answer with its name only.", "Pacific Ocean"
    ),
    _exact("Longest river in Africa", "geography", "Name the longest river in Africa. One word.", "Nile", "medium"),
    _custom(
        "Countries bordering Switzerland",
        "geography",
        "List the countries that border Switzerland.",
        "France, Germany, Italy, Austria and Liechtenstein.",
        "contains",
        "medium",
        values=["France", "Germany", "Italy", "Austria", "Liechtenstein"],
    ),
    _exact(
        "Capital of Australia",
        "geography",
        "What is the capital of Australia? One word.",
        "Canberra",
        "medium",
        tags=["capitals", "trick"],
    ),
    # math
    _custom("Multiply two numbers", "math", "What is 17 × 23? Give the number only.", 391, "numeric", "easy"),
    _custom(
        "Compound interest",
        "math",
        "What is 1000 invested at 5% a year, compounded yearly, worth after 3 years? Round to cents.",
        1157.63,
        "numeric",
        "medium",
        abs_tolerance=0.01,
    ),
    _custom(
        "Square root of two",
        "math",
        "Give the square root of 2 to four decimal places.",
        1.4142,
        "numeric",
        "easy",
        abs_tolerance=0.0001,
    ),
    _custom(
        "Sum of an arithmetic series", "math", "What is the sum of the integers from 1 to 100?", 5050, "numeric", "easy"
    ),
    _exact("Prime check", "math", "Is 97 a prime number? Answer yes or no.", "yes", "easy", tags=["number-theory"]),
    _custom(
        "Probability of two sixes",
        "math",
        "Two fair dice are rolled. What is the probability of two sixes, as a decimal?",
        0.02778,
        "numeric",
        "medium",
        rel_tolerance=0.01,
        tags=["probability"],
    ),
    # coding
    _custom(
        "Python list comprehension",
        "coding",
        "Write a Python expression that builds the list of squares of 0..9 using a list comprehension.",
        "[x ** 2 for x in range(10)]",
        "regex",
        "easy",
        pattern=r"\[\s*\w+\s*\*\*\s*2\s+for\s+\w+\s+in\s+range\(\s*10\s*\)\s*\]",
    ),
    _custom(
        "SQL count query",
        "coding",
        "Write a SQL query that counts the rows in a table named users.",
        "SELECT COUNT(*) FROM users;",
        "regex",
        "easy",
        pattern=r"(?i)select\s+count\(\s*\*\s*\)\s+from\s+users",
        tags=["sql"],
    ),
    _exact(
        "Big-O of binary search",
        "coding",
        "What is the time complexity of binary search? Answer in big-O notation.",
        "O(log n)",
        "easy",
        evaluation_config={"collapse_whitespace": True},
    ),
    _judged(
        "Explain a race condition",
        "coding",
        "Explain what a race condition is and how a mutex prevents it.",
        "A race condition occurs when the outcome depends on the timing of concurrent operations on shared state; "
        "a mutex makes the critical section mutually exclusive so only one thread changes the state at a time.",
        "Full marks for a correct definition involving shared state and timing, and a correct account of mutual "
        "exclusion. Half marks if either part is vague.",
    ),
    _custom(
        "JSON config key",
        "coding",
        'Return a JSON object with a key "retries" set to 3 and "backoff" set to "exponential".',
        {"retries": 3, "backoff": "exponential"},
        "json_path",
        "easy",
        path="$.retries",
        value=3,
        tags=["json"],
    ),
    # reasoning
    _exact(
        "Odd one out", "reasoning", "Which word does not belong: apple, banana, carrot, cherry? One word.", "carrot"
    ),
    _exact(
        "Syllogism",
        "reasoning",
        "All bloops are razzies and all razzies are lazzies. Are all bloops lazzies? yes or no.",
        "yes",
        "medium",
        tags=["logic"],
    ),
    _custom(
        "Sequence continuation", "reasoning", "What number comes next: 2, 6, 12, 20, 30, ?", 42, "numeric", "medium"
    ),
    _judged(
        "Plan a trip",
        "reasoning",
        "I have 3 days in Rome and love history. Propose a day-by-day plan, explaining the order you chose.",
        "Day 1 ancient Rome (Colosseum, Forum, Palatine), day 2 Vatican (Museums, Sistine Chapel, St Peter's), "
        "day 3 Pantheon, Trevi, Spanish Steps; grouped by area to limit travel.",
        "Score on historical relevance, sensible geographic grouping and a stated rationale.",
    ),
    _exact(
        "River crossing count",
        "reasoning",
        "A farmer must cross a river with a wolf, a goat and a cabbage; the boat holds him and one item. "
        "What is the minimum number of crossings? Give the number only.",
        "7",
        "hard",
        tags=["logic", "puzzle"],
    ),
    # extraction (structured)
    _structured(
        "Extract a person",
        "extraction",
        "Extract name, age and city as JSON from: 'Maria Lopez, 34, moved to Lisbon last spring.'",
        {"name": "Maria Lopez", "age": 34, "city": "Lisbon"},
        _PERSON_SCHEMA,
        "easy",
    ),
    _structured(
        "Extract an invoice",
        "extraction",
        "Extract invoice_number, total, currency and items from: 'Invoice INV-2041: 2 widgets and 1 gadget, "
        "total 149.90 EUR.'",
        {"invoice_number": "INV-2041", "total": 149.9, "currency": "EUR", "items": ["widget", "gadget"]},
        _INVOICE_SCHEMA,
        "medium",
        ignore_array_order=True,
        float_tolerance=0.01,
    ),
    _structured(
        "Parse a date range",
        "extraction",
        "Return JSON {start, end} in ISO format for 'from March 3rd to March 9th, 2025'.",
        {"start": "2025-03-03", "end": "2025-03-09"},
        {
            "type": "object",
            "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
            "required": ["start", "end"],
        },
        "medium",
        ignore_extra_fields=True,
    ),
    _structured(
        "List the primary colours",
        "extraction",
        "Return a JSON array of the three primary colours of light.",
        ["red", "green", "blue"],
        {"type": "array", "items": {"type": "string"}, "minItems": 3},
        "easy",
        ignore_array_order=True,
    ),
    _structured(
        "Nested order",
        "extraction",
        "Return JSON for: customer Ann (id 7) ordered 2 pens at 1.50 each.",
        {"customer": {"id": 7, "name": "Ann"}, "lines": [{"item": "pen", "quantity": 2, "unit_price": 1.5}]},
        {"type": "object", "required": ["customer", "lines"]},
        "hard",
        float_tolerance=0.001,
    ),
    # language
    _exact(
        "Translate to Spanish",
        "language",
        "Translate 'good morning' into Spanish. Answer with the translation only.",
        "buenos días",
        "easy",
        language="es",
        tags=["translation"],
    ),
    _custom(
        "Summarise a sentence",
        "language",
        "Summarise in a few words: 'The committee postponed the vote because several members were absent.'",
        "vote postponed because members absent",
        "f1",
        "medium",
        threshold=0.5,
    ),
    _custom(
        "Spell a word",
        "language",
        "Spell the word 'necessary' correctly.",
        "necessary",
        "levenshtein",
        "easy",
        threshold=0.9,
    ),
    _judged(
        "Write a haiku",
        "language",
        "Write a haiku about autumn rain.",
        "A three-line poem of 5, 7 and 5 syllables evoking autumn and rain.",
        "Score on the 5-7-5 form, the autumn theme and the imagery.",
    ),
    _exact("Plural of mouse", "language", "What is the plural of 'mouse' (the animal)? One word.", "mice", "easy"),
    # knowledge
    _exact(
        "Chemical symbol of gold",
        "knowledge",
        "What is the chemical symbol for gold?",
        "Au",
        "easy",
        evaluation_config={"case_sensitive": True},
    ),
    _exact("Author of 1984", "knowledge", "Who wrote the novel '1984'? Full name.", "George Orwell", "easy"),
    _custom(
        "Speed of light",
        "knowledge",
        "What is the speed of light in vacuum, in km/s?",
        299792,
        "numeric",
        "medium",
        rel_tolerance=0.001,
    ),
]

# Titles of demo tests left in the moderation queue, and one rejected with a reason.
PENDING_TITLES = {"Plan a trip", "Nested order", "Speed of light"}
REJECTED = {"Plural of mouse": "Too easy and ambiguous: 'mouses' is also accepted for computer mice."}
