"""Checks of the environment, the artifact and the specs: doctor, self-check, spec-guard."""
