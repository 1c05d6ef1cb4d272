"""Coverage: households, visits, patrols and the coverage metrics."""
