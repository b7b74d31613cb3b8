"""Publishing: the record of published at-risk lists, the gates before it, and its export targets."""
