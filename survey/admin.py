from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html, linebreaks
from django.utils.translation import gettext_lazy as _

from survey.generation_checks import CONFOUND_FLAG_LABELS
from survey.models import MirrorStatus, Participant, Post, Response, Survey, Topic
from survey.sheets_ledger import percentile


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "slug",
        "is_open",
        "is_default",
        "rounds_per_participant",
        "topic_count",
        "answered_count",
    ]
    list_editable = ["is_open"]
    prepopulated_fields = {"slug": ["title"]}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                topic_total=Count("topics", distinct=True),
            )
        )

    @admin.display(description=_("topics"), ordering="topic_total")
    def topic_count(self, survey):
        return survey.topic_total

    @admin.display(description=_("answered responses"))
    def answered_count(self, survey):
        return Response.objects.filter(topic__survey=survey).answered().count()


class PostInline(admin.StackedInline):
    model = Post
    extra = 0
    fields = ["author", "model", "word_count", "preview"]
    readonly_fields = ["word_count", "preview"]
    show_change_link = True

    @admin.display(description=_("text"))
    def preview(self, post):
        return _render_body(post.body)


def _render_body(body: str):
    return format_html('<div class="post-preview">{}</div>', linebreaks(body, autoescape=True))


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "survey",
        "language",
        "is_active",
        "is_sample",
        "post_count",
        "served_count",
        "answered_count",
    ]
    list_filter = ["survey", "language", "is_active", "is_sample"]
    search_fields = ["title", "brief"]
    readonly_fields = ["served_count"]
    inlines = [PostInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                post_total=Count("posts", distinct=True),
                answered_total=Count(
                    "responses", filter=Q(responses__answered_at__isnull=False), distinct=True
                ),
            )
        )

    @admin.display(description=_("posts"), ordering="post_total")
    def post_count(self, topic):
        return topic.post_total

    @admin.display(description=_("answered"), ordering="answered_total")
    def answered_count(self, topic):
        return topic.answered_total


class ConfoundFlagFilter(admin.SimpleListFilter):
    title = _("confound flag")
    parameter_name = "confound"

    def lookups(self, request, model_admin):
        return [("any", _("any flag")), ("none", _("no flag")), *CONFOUND_FLAG_LABELS.items()]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(confound_flags=[])
        if value == "any":
            return queryset.exclude(confound_flags=[])
        if value in CONFOUND_FLAG_LABELS:
            # JSON "contains" is not available on SQLite; the quoted code
            # matches one whole element of the stored list on both databases.
            return queryset.filter(confound_flags__icontains=f'"{value}"')
        return queryset


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = [
        "topic",
        "author",
        "model",
        "word_count",
        "length_ratio",
        "flags",
        "usage_source",
        "language",
        "created_at",
    ]
    list_filter = [
        "author",
        "model",
        ConfoundFlagFilter,
        "usage_source",
        "topic__survey",
        "topic__language",
    ]
    search_fields = ["topic__title", "model", "body"]
    list_select_related = ["topic"]
    readonly_fields = [
        "word_count",
        "preview",
        "endpoint",
        "prompt",
        "parameters",
        "ttft_ms",
        "duration_ms",
        "completion_tokens",
        "tokens_per_second",
        "finish_reason",
        "usage_source",
        "length_ratio",
        "flags",
    ]
    fieldsets = [
        (None, {"fields": ["topic", "author", "model", "body", "word_count", "preview"]}),
        (_("Confounds"), {"fields": ["length_ratio", "flags"]}),
        (
            _("Generation record"),
            {
                "classes": ["collapse"],
                "fields": [
                    "endpoint",
                    "prompt",
                    "parameters",
                    "ttft_ms",
                    "duration_ms",
                    "completion_tokens",
                    "tokens_per_second",
                    "finish_reason",
                    "usage_source",
                ],
            },
        ),
    ]

    @admin.display(description=_("confound flags"))
    def flags(self, post):
        return ", ".join(str(CONFOUND_FLAG_LABELS.get(flag, flag)) for flag in post.confound_flags)

    @admin.display(description=_("language"), ordering="topic__language")
    def language(self, post):
        return post.topic.language

    @admin.display(description=_("preview"))
    def preview(self, post):
        return _render_body(post.body)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Research data: visible to organizers, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "survey", "channel", "language", "consented_at", "finished_at"]
    list_filter = ["survey", "channel", "language"]
    search_fields = ["public_id"]


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    list_display = [
        "participant",
        "round_number",
        "topic",
        "served_at",
        "answered_at",
        "guessed_correctly",
        "confidence",
    ]
    list_filter = ["topic__survey", "topic__language", ("answered_at", admin.EmptyFieldListFilter)]
    list_select_related = ["participant", "topic", "guessed_human"]
    search_fields = ["participant__public_id", "topic__title"]

    @admin.display(description=_("guessed correctly"), boolean=True)
    def guessed_correctly(self, response):
        return response.guessed_correctly


@admin.register(MirrorStatus)
class MirrorStatusAdmin(ReadOnlyAdmin):
    """The Google Sheets mirror's state, written only by the mirror_sheets worker."""

    list_display = [
        "spreadsheet_id",
        "worksheet_title",
        "pending_rows",
        "last_success_at",
        "lag_seconds_last",
        "lag_p95",
        "last_error_at",
    ]
    fields = [
        "spreadsheet_id",
        "worksheet_title",
        "pending_rows",
        "last_success_at",
        "lag_seconds_last",
        "lag_p95",
        "last_error",
        "last_error_at",
        "rebuild_heartbeat_at",
        "generation",
        "next_row",
    ]
    readonly_fields = fields

    @admin.display(description=_("answered, not in the sheet yet"))
    def pending_rows(self, status):
        return Response.objects.pending_mirror().count()

    @admin.display(description=_("lag p95 (s)"))
    def lag_p95(self, status):
        return percentile(list(status.lag_samples), 0.95)
