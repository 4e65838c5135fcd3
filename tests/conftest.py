import pytest
from django.utils import translation

from survey import catalog
from tests.factories import make_survey, make_topic


@pytest.fixture
def survey(db):
    return make_survey()


@pytest.fixture
def topics(survey):
    return [make_topic(survey, title=f"Topic {index}") for index in range(6)]


@pytest.fixture(autouse=True)
def english_by_default():
    """Reset the active language after each test, since a Korean request leaves
    Korean active in the thread that ran it."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def fresh_catalog():
    """Start each test without cached surveys and topics, because the rows of
    the next test may reuse the ids of a rolled-back one."""
    catalog.clear()
    yield
    catalog.clear()
