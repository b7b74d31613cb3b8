"""Test support: fixtures' data builders, generated data through the real CLI, service checks."""
