from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveyConfig(AppConfig):
    name = "survey"
    verbose_name = _("Booth survey")

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        from survey.ratelimit import record_login_failure

        user_login_failed.connect(record_login_failure, dispatch_uid="survey.login_failure")
