"""REST endpoints of this app (none yet)."""


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
