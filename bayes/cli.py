"""Command line: ``cytofactory`` (placeholder, replaced by the data-layer work)."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    return 0
