"""Test support: fixtures' data builders, generated data through the real CLI, service checks.

Importing it (tests/conftest.py does, before anything imports numpy) pins the numerical kernels as
the `churn` entry does (churn.kernels), so stages run in the test process compute the same bytes
as the `churn` subprocesses they are compared with; pytest-xdist's workers inherit the pin.
"""

from churn.kernels import pin_kernels

pin_kernels()
