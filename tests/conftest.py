import pytest

from tests.factories import make_survey, make_topic


@pytest.fixture
def survey(db):
    return make_survey()


@pytest.fixture
def topics(survey):
    return [make_topic(survey, title=f"Topic {index}") for index in range(6)]
