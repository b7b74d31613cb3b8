"""Uplift targeting: who a contact would keep, learned from randomized campaigns, behind a gate."""
