from django.conf import settings


def test_suite_runs_without_debug():
    assert settings.DEBUG is False
