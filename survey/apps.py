from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveyConfig(AppConfig):
    name = "survey"
    verbose_name = _("Booth survey")

    def ready(self):
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import post_delete, post_save

        from survey.catalog import clear_on_content_change
        from survey.models import Post, Survey, Topic
        from survey.ratelimit import record_login_failure

        user_login_failed.connect(record_login_failure, dispatch_uid="survey.login_failure")
        for model in (Survey, Topic, Post):
            for signal in (post_save, post_delete):
                signal.connect(clear_on_content_change, sender=model)
