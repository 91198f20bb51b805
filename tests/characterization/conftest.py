import pytest

from tests.characterization.factories import make_check


@pytest.fixture
def check(lab, member):
    """A post-vitrification check of a vitrified grid of the member's lab."""
    return make_check(lab=lab, user=member)
