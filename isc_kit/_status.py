"""Per-entry states shared by fetch plans and verify reports (standard library only)."""

MISSING, VERIFIED, UNVERIFIED, CORRUPT = 0, 1, 2, 3
STATUS_NAMES = ("missing", "verified", "unverified", "corrupt")
