"""Test helpers shared by every app: fake vendor servers speaking each provider's wire format on 127.0.0.1."""
