"""Demo data generators; nothing outside this package imports it.

district (the Tianya layer set) · population (where people live) · places, people, texts, course and
issues (the synthetic year of issues) · workflow (its side paths) · coverage (households, visits,
patrols) · users (demo accounts).
"""
