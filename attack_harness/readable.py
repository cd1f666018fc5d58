"""Schemes that serve READABLE features on purpose, and what that changes in a scan.

A readable scheme (Crafter) is not encryption: any consumer computes on its features, and
attribute analytics on them is the point. So for such a target, the attacks that measure
what the scheme means to keep (`Attack.utility_if_readable`, e.g. attribute inference) are
reported as UTILITY beside the plaintext control, never as a leak verdict; identity,
linkability and reconstruction stay privacy verdicts. Plaintext is readable too but is the
control, and encrypted schemes keep every column a privacy verdict.

A readable transform can be undone: `inversion` recovers the plain features (white-box with
the transform's file, which a target exposes as `served_transform`; black-box with a learned
map), and every attack, attributes included, is then gated on the recovered features as a
leak, in the readings `inverted-whitebox` / `inverted-blackbox`.
"""

from __future__ import annotations

__all__ = ["READABLE", "is_readable"]

# scheme -> what it promises, in one line (shown in reports)
READABLE: dict[str, str] = {
    "crafter": "Crafter (NDSS 2024): features perturbed so inversion yields a public-prior "
               "person; readable without keys, attributes kept",
}


def is_readable(scheme: str | None) -> bool:
    return scheme in READABLE
