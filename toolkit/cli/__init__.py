"""The airseal command line."""


def main() -> None:
    """Entry point of the ``airseal`` console script."""
    raise SystemExit(0)
