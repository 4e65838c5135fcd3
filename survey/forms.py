from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from survey.models import POSITIONS, Response
from survey.responses import COMMENT_MAX_LENGTH

# Error codes that an honest submission of the rendered form cannot produce: a
# value outside the offered choices, a non-number, a NUL byte. They get a 400;
# every other error (a missing choice, an over-long comment) shows the form again.
TAMPERING_ERROR_CODES = frozenset(
    {"invalid_choice", "invalid", "invalid_list", "null_characters_not_allowed"}
)


@dataclass(frozen=True)
class Option:
    """One radio button or checkbox of a ballot field, as the template renders it."""

    value: str
    label: str
    id: str
    checked: bool


class ConsentForm(forms.Form):
    consent = forms.BooleanField(
        label=_("I have read the above and agree to take part."),
        error_messages={"required": _("Please tick the box to agree before you start.")},
    )


class BallotForm(forms.Form):
    response = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    guessed_human = forms.TypedChoiceField(
        label=_("Which one did a person write?"),
        widget=forms.RadioSelect,
        coerce=int,
        error_messages={"required": _("Pick the post you think a person wrote.")},
    )
    preferred = forms.TypedChoiceField(
        label=_("Which one would you rather read?"),
        widget=forms.RadioSelect,
        coerce=int,
        error_messages={"required": _("Pick the post you would rather read.")},
    )
    confidence = forms.TypedChoiceField(
        label=_("How sure are you about the post a person wrote? (optional)"),
        widget=forms.RadioSelect,
        coerce=int,
        empty_value=None,
        required=False,
        choices=[
            (1, _("1 – guessing")),
            (2, "2"),
            (3, "3"),
            (4, "4"),
            (5, _("5 – certain")),
        ],
    )
    reasons = forms.MultipleChoiceField(
        label=_("What helped you decide? (optional)"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        choices=Response.REASON_CHOICES,
    )
    comment = forms.CharField(
        label=_("Anything else? (optional)"),
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        strip=True,
        error_messages={
            "max_length": _("Please keep the comment under %(limit_value)d characters.")
        },
    )

    def __init__(self, *args, served: Response, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = served
        post_choices = [
            (post_id, _("Post %(letter)s") % {"letter": letter})
            for letter, post_id in zip(POSITIONS, served.displayed_post_ids, strict=True)
        ]
        self.fields["guessed_human"].choices = post_choices
        self.fields["preferred"].choices = post_choices
        self.fields["response"].initial = served.pk

    def is_tampered(self) -> bool:
        """Return True when an error shows the request did not come from this form."""
        for field_errors in self.errors.as_data().values():
            for error in field_errors:
                if error.code in TAMPERING_ERROR_CODES:
                    return True
        return False

    @property
    def letter_fields(self) -> list[tuple[forms.BoundField, list[Option]]]:
        """The two required questions, each with its options (the posts A, B and C)."""
        return [(self[name], self.options(name)) for name in ("guessed_human", "preferred")]

    @property
    def confidence_options(self) -> list[Option]:
        return self.options("confidence")

    @property
    def reasons_options(self) -> list[Option]:
        return self.options("reasons")

    def options(self, name: str) -> list[Option]:
        """Return the choices of field ``name`` with the submitted ones checked.

        The same ids and values as Django's radio and checkbox widgets, without
        building a widget per option, which costs more than the rest of the page.
        """
        bound = self[name]
        value = bound.value()
        values = value if isinstance(value, list | tuple) else [value]
        selected = {str(item) for item in values if item not in (None, "")}
        return [
            Option(
                value=str(choice),
                label=str(label),
                id=f"{bound.auto_id}_{index}",
                checked=str(choice) in selected,
            )
            for index, (choice, label) in enumerate(self.fields[name].choices)
        ]
