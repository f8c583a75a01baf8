"""Benchmarks of idsync against raw LDAP tools, measured in the same run.

``python -m benchmarks`` (or ``make bench``) starts a private, tuned slapd,
generates data deterministically, runs each workload with its baseline, and
prints absolute figures and ratios; it writes them as JSON too. Figures vary
between machines and runs: the ratios are what the targets are about.
S1 times the ``idsync`` command's start-up against ``python -c pass``
(``python -m benchmarks --only startup`` runs it alone, without slapd).
"""
