import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import linebreaks
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

HUMAN = "human"
MODEL = "model"
POSITIONS = ("A", "B", "C")


def default_languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


class SurveyQuerySet(models.QuerySet):
    def open(self):
        return self.filter(is_open=True)

    def default(self):
        """Return the survey served at ``/``: the open default survey, or None."""
        return self.open().filter(is_default=True).first()


class Survey(models.Model):
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    title = models.CharField(_("title"), max_length=200)
    intro = models.TextField(_("introduction"), blank=True)
    rounds_per_participant = models.PositiveSmallIntegerField(
        _("rounds per participant"), default=5
    )
    languages = models.JSONField(
        _("languages"),
        default=default_languages,
        help_text=_('Language codes of the topics offered, for example ["en", "ko"].'),
    )
    min_answer_seconds = models.PositiveSmallIntegerField(
        _("minimum answer time (seconds)"),
        default=10,
        help_text=_("Answers faster than this are flagged as too fast."),
    )
    is_open = models.BooleanField(_("open"), default=True)
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("Served at the site root.")
    )
    screen_enabled = models.BooleanField(
        _("public booth screen"),
        default=False,
        help_text=_("Show aggregate results and a QR code at /s/<slug>/screen/."),
    )
    screen_min_responses = models.PositiveIntegerField(
        _("minimum responses before the screen shows results"), default=20
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = SurveyQuerySet.as_manager()

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="survey_single_default",
            ),
            models.CheckConstraint(
                condition=Q(rounds_per_participant__gte=1),
                name="survey_rounds_positive",
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("survey:welcome", kwargs={"slug": self.slug})


class TopicQuerySet(models.QuerySet):
    def servable(self):
        """Topics that can form a comparison: active, one human post, two or more model posts."""
        return (
            self.filter(is_active=True)
            .annotate(
                human_posts=models.Count("posts", filter=Q(posts__author=HUMAN)),
                model_posts=models.Count("posts", filter=Q(posts__author=MODEL)),
            )
            .filter(human_posts=1, model_posts__gte=2)
        )


class Topic(models.Model):
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="topics", verbose_name=_("survey")
    )
    title = models.CharField(_("title"), max_length=300)
    brief = models.TextField(_("brief"), blank=True)
    language = models.CharField(_("language"), max_length=8, default="en")
    is_active = models.BooleanField(_("active"), default=True)
    is_sample = models.BooleanField(
        _("sample content"),
        default=False,
        help_text=_("Bundled demonstration content, not written for this event."),
    )
    # Times a comparison of this topic was served. It drives least-served-first
    # assignment and picks the display order, so it only ever grows.
    served_count = models.PositiveIntegerField(_("times served"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = TopicQuerySet.as_manager()

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["survey", "language", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "language", "title"], name="topic_unique_title"
            ),
        ]

    def __str__(self):
        return self.title


class Post(models.Model):
    AUTHOR_CHOICES = [(HUMAN, _("human")), (MODEL, _("model"))]

    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, related_name="posts", verbose_name=_("topic")
    )
    author = models.CharField(_("author"), max_length=10, choices=AUTHOR_CHOICES)
    model = models.CharField(
        _("model"), max_length=200, blank=True, help_text=_("Model name, for model posts.")
    )
    body = models.TextField(_("body"))
    word_count = models.PositiveIntegerField(_("words"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    # Generation record, set for posts that generate_posts wrote.
    endpoint = models.CharField(_("endpoint"), max_length=500, blank=True)
    prompt = models.TextField(_("prompt"), blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    ttft_ms = models.FloatField(_("time to first token (ms)"), null=True, blank=True)
    duration_ms = models.FloatField(_("duration (ms)"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    tokens_per_second = models.FloatField(_("tokens per second"), null=True, blank=True)
    finish_reason = models.CharField(_("finish reason"), max_length=40, blank=True)
    usage_source = models.CharField(
        _("token count source"),
        max_length=10,
        blank=True,
        help_text=_('"server" when the endpoint reported usage, "local" when counted here.'),
    )
    length_ratio = models.FloatField(_("length ratio to the human post"), null=True, blank=True)
    confound_flags = models.JSONField(
        _("confound flags"),
        default=list,
        blank=True,
        help_text=_("Differences from the human post that could give the author away."),
    )

    class Meta:
        verbose_name = _("post")
        verbose_name_plural = _("posts")
        ordering = ["topic", "author", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["topic"], condition=Q(author=HUMAN), name="post_one_human_per_topic"
            ),
            models.UniqueConstraint(
                fields=["topic", "model"],
                condition=Q(author=MODEL),
                name="post_one_per_model_per_topic",
            ),
            models.CheckConstraint(
                condition=Q(author=HUMAN, model="") | Q(author=MODEL) & ~Q(model=""),
                name="post_model_named_for_model_posts",
            ),
        ]

    def __str__(self):
        return f"{self.topic} ({self.author_label})"

    def save(self, *args, **kwargs):
        self.word_count = len(self.body.split())
        super().save(*args, **kwargs)

    @cached_property
    def body_html(self) -> str:
        """The body as HTML paragraphs, escaped: what the round page shows."""
        # linebreaks() escapes each paragraph itself when autoescape is on.
        return mark_safe(linebreaks(self.body, autoescape=True))  # noqa: S308

    @property
    def author_label(self) -> str:
        """``human`` or the model's name: the author as exports write it."""
        return HUMAN if self.author == HUMAN else self.model


class Participant(models.Model):
    CHANNEL_CHOICES = [("kiosk", _("kiosk")), ("phone", _("phone")), ("web", _("web"))]

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="participants", verbose_name=_("survey")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=CHANNEL_CHOICES)
    device_class = models.CharField(
        _("device class"),
        max_length=10,
        blank=True,
        help_text=_(
            '"mobile" or "desktop", from a coarse user-agent check; the string is not kept.'
        ),
    )
    language = models.CharField(_("language"), max_length=8)
    consented_at = models.DateTimeField(_("consented"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Shown on the finish page; with it the participant can withdraw their answers.
    receipt_code = models.CharField(
        _("receipt code"), max_length=9, unique=True, null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["-consented_at"]

    def __str__(self):
        return str(self.public_id)


class ResponseQuerySet(models.QuerySet):
    def answered(self):
        return self.filter(answered_at__isnull=False)

    def pending_answer(self):
        return self.filter(answered_at__isnull=True)

    def with_posts(self):
        return self.select_related(
            "participant",
            "topic",
            "topic__survey",
            "post_a",
            "post_b",
            "post_c",
            "guessed_human",
            "preferred",
        )

    def pending_mirror(self):
        """Answered responses whose row is not in the Google Sheet yet."""
        return self.answered().filter(mirrored_at__isnull=True)


class Response(models.Model):
    REASON_CHOICES = [
        ("style", _("Writing style")),
        ("personal", _("Personal details or experience")),
        ("structure", _("Structure and formatting")),
        ("errors", _("Small mistakes or quirks")),
        ("tone", _("Tone or emotion")),
        ("gut", _("Gut feeling")),
    ]

    participant = models.ForeignKey(
        Participant,
        on_delete=models.CASCADE,
        related_name="responses",
        verbose_name=_("participant"),
    )
    topic = models.ForeignKey(
        Topic, on_delete=models.PROTECT, related_name="responses", verbose_name=_("topic")
    )
    round_number = models.PositiveSmallIntegerField(_("round"))
    # Display order: the posts shown in positions A, B and C.
    post_a = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="+")
    post_b = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="+")
    post_c = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="+")
    served_at = models.DateTimeField(_("served"), default=timezone.now)

    answered_at = models.DateTimeField(_("answered"), null=True, blank=True, db_index=True)
    guessed_human = models.ForeignKey(
        Post, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    preferred = models.ForeignKey(
        Post, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    confidence = models.PositiveSmallIntegerField(_("confidence"), null=True, blank=True)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    comment = models.TextField(_("comment"), max_length=500, blank=True)

    # Sheets mirror bookkeeping, written only by survey.sheets_ledger. The row
    # is claimed before the write and kept, so a retried write lands on the same
    # sheet row. The claim is a lease that lets one worker write at a time.
    mirror_row = models.PositiveIntegerField(
        _("sheet row"), null=True, blank=True, unique=True, editable=False
    )
    mirror_claim = models.UUIDField(_("mirror claim"), null=True, blank=True, editable=False)
    mirror_claimed_at = models.DateTimeField(
        _("mirror claimed"), null=True, blank=True, editable=False
    )
    mirrored_at = models.DateTimeField(
        _("mirrored"), null=True, blank=True, db_index=True, editable=False
    )

    objects = ResponseQuerySet.as_manager()

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        ordering = ["participant", "round_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "round_number"], name="response_unique_round"
            ),
            models.UniqueConstraint(fields=["participant", "topic"], name="response_unique_topic"),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True)
                | Q(guessed_human__isnull=False, preferred__isnull=False),
                name="response_answer_complete",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=1, confidence__lte=5),
                name="response_confidence_range",
            ),
        ]

    def __str__(self):
        return f"{self.participant} round {self.round_number}"

    @property
    def displayed_posts(self) -> list[Post]:
        return [self.post_a, self.post_b, self.post_c]

    @property
    def displayed_post_ids(self) -> list[int]:
        """The ids of the posts in positions A, B and C, read without loading the posts."""
        return [self.post_a_id, self.post_b_id, self.post_c_id]

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None

    @property
    def guessed_correctly(self) -> bool | None:
        if self.guessed_human_id is None:
            return None
        return self.guessed_human.author == HUMAN

    def position_of(self, post_id: int) -> str | None:
        for position, post in zip(POSITIONS, self.displayed_posts, strict=True):
            if post.pk == post_id:
                return position
        return None


class MirrorStatus(models.Model):
    """State of the Google Sheets mirror: one row, shared by every mirror worker."""

    SINGLETON_PK = 1

    spreadsheet_id = models.CharField(
        _("spreadsheet id"),
        max_length=200,
        blank=True,
        help_text=_("The spreadsheet that the stored sheet rows refer to."),
    )
    worksheet_title = models.CharField(_("worksheet"), max_length=100, blank=True)
    columns = models.JSONField(
        _("columns"),
        default=list,
        blank=True,
        help_text=_("The header the stored sheet rows were written under."),
    )
    # Incremented by every rebuild. A worker that claimed rows in an older
    # generation stops before writing them, because their row numbers are void.
    generation = models.PositiveIntegerField(_("generation"), default=0)
    next_row = models.PositiveIntegerField(_("next free sheet row"), default=2)
    rebuild_claim = models.UUIDField(_("rebuild claim"), null=True, blank=True)
    rebuild_heartbeat_at = models.DateTimeField(_("rebuild heartbeat"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last successful write"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error time"), null=True, blank=True)
    lag_seconds_last = models.FloatField(_("lag of the last batch (s)"), null=True, blank=True)
    lag_samples = models.JSONField(
        _("recent lags (s)"),
        default=list,
        blank=True,
        help_text=_("Mirror lag of the most recent rows, in seconds, oldest first."),
    )

    class Meta:
        verbose_name = _("Sheets mirror status")
        verbose_name_plural = _("Sheets mirror status")

    def __str__(self):
        return self.spreadsheet_id or str(_("Sheets mirror (not started)"))


class WithdrawnSheetRow(models.Model):
    """A sheet row whose response was withdrawn; the mirror blanks it, then deletes this."""

    row = models.PositiveIntegerField(_("sheet row"))
    # The mirror generation the row number belongs to. A rebuild since then has
    # already left the response out, so a row of an older generation is skipped.
    generation = models.PositiveIntegerField(_("generation"))
    # A row still claimed by a worker may be written once more; it is blanked
    # only after that claim's lease has run out.
    not_before = models.DateTimeField(_("blank after"))
    created_at = models.DateTimeField(_("withdrawn"), default=timezone.now)

    class Meta:
        verbose_name = _("withdrawn sheet row")
        verbose_name_plural = _("withdrawn sheet rows")
        ordering = ["row"]

    def __str__(self):
        return f"row {self.row}"


class RateCounter(models.Model):
    """Requests counted for one rate-limit key in its current fixed window."""

    key = models.CharField(_("key"), max_length=100, primary_key=True)
    # Unix time in whole seconds at which the current window ends.
    window_end = models.BigIntegerField(_("window end"))
    hits = models.PositiveIntegerField(_("hits"))

    class Meta:
        verbose_name = _("rate-limit counter")
        verbose_name_plural = _("rate-limit counters")
        indexes = [models.Index(fields=["window_end"], name="ratecounter_window_end")]

    def __str__(self):
        return f"{self.key}: {self.hits}"
