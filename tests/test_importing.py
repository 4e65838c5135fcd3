import json

import pytest
from django.core.management import CommandError, call_command

from survey.importing import ImportFailed, import_lines
from survey.models import Post, Survey, Topic


def line(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False)


def topic_lines(title="Why I bike to work", language="en", **extra) -> list[str]:
    return [
        line(
            topic=title,
            body="I bike because the bus is late.",
            author="human",
            language=language,
            **extra,
        ),
        line(
            topic=title,
            body="Cycling offers many benefits.",
            author="model",
            model="m-a",
            language=language,
            **extra,
        ),
        line(
            topic=title,
            body="Biking: a balanced view.",
            author="model",
            model="m-b",
            language=language,
            **extra,
        ),
    ]


@pytest.mark.django_db
def test_import_into_empty_database_creates_open_default_survey():
    summary = import_lines(topic_lines())

    survey = Survey.objects.get()
    assert survey.is_default is True
    assert survey.is_open is True
    assert Survey.objects.default() == survey
    assert summary.posts_created == 3
    assert Topic.objects.servable().filter(survey=survey).count() == 1


@pytest.mark.django_db
def test_import_twice_adds_nothing():
    import_lines(topic_lines())
    summary = import_lines(topic_lines())

    assert summary.posts_created == 0
    assert summary.posts_unchanged == 3
    assert Post.objects.count() == 3
    assert Topic.objects.count() == 1


@pytest.mark.django_db
def test_bad_line_rolls_back_everything():
    lines = topic_lines() + [
        line(topic="Second topic", body="Fine.", author="human"),
        '{"topic": "Broken", "body": ',
        line(topic="Third", body="No model named.", author="model"),
    ]

    with pytest.raises(ImportFailed) as failure:
        import_lines(lines)

    assert [number for number, _reason in failure.value.errors] == [5, 6]
    assert "invalid JSON" in failure.value.errors[0][1]
    assert "model" in failure.value.errors[1][1]
    assert Post.objects.count() == 0
    assert Topic.objects.count() == 0
    assert Survey.objects.count() == 0


@pytest.mark.django_db
def test_conflict_with_stored_post_rolls_back():
    import_lines(topic_lines())
    changed = topic_lines()
    changed[0] = line(topic="Why I bike to work", body="A different text.", author="human")
    changed.append(line(topic="New topic", body="New.", author="human"))

    with pytest.raises(ImportFailed) as failure:
        import_lines(changed)

    assert failure.value.errors[0][0] == 1
    assert "different text" in failure.value.errors[0][1]
    assert not Topic.objects.filter(title="New topic").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (line(topic="T", body="B", author="robot"), "author must be"),
        (line(topic="T", body="", author="human"), "'body' is empty"),
        (line(body="B", author="human"), "missing 'topic'"),
        (line(topic="T", body="B", author="human", model="m"), "must not name a model"),
        (line(topic="T", body="B", author="human", language="fr"), "language 'fr'"),
        (line(topic="T", body="B", author="human", langauge="en"), "unknown key"),
        (line(topic="T", body="B", author="human", survey="nope"), "does not exist"),
        (line(topic="T", body=5, author="human"), "must be a string"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_invalid_line_reported_with_reason(bad, reason):
    with pytest.raises(ImportFailed) as failure:
        import_lines([bad])

    assert failure.value.errors[0][0] == 1
    assert reason in failure.value.errors[0][1]
    assert Post.objects.count() == 0


@pytest.mark.django_db
def test_duplicate_post_in_file_rejected():
    lines = topic_lines() + [topic_lines()[1]]

    with pytest.raises(ImportFailed) as failure:
        import_lines(lines)

    assert failure.value.errors == [
        (4, "a post by model 'm-a' for topic 'Why I bike to work' already appears on line 2")
    ]


@pytest.mark.django_db
def test_named_survey_and_language():
    Survey.objects.create(slug="pycon", title="PyCon booth")
    import_lines(topic_lines(title="자전거 출근", language="ko", survey="pycon"))

    topic = Topic.objects.get()
    assert topic.survey.slug == "pycon"
    assert topic.language == "ko"
    assert not Survey.objects.filter(is_default=True).exists()


@pytest.mark.django_db
def test_command_reports_line_numbers(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(topic_lines() + ["not json"]) + "\n", encoding="utf-8")

    with pytest.raises(CommandError, match="line 4: invalid JSON"):
        call_command("import_posts", str(path))

    assert Post.objects.count() == 0


@pytest.mark.django_db
def test_command_rejects_invalid_utf8(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b'{"topic": "\xff"}\n')

    with pytest.raises(CommandError, match="not valid UTF-8"):
        call_command("import_posts", str(path))


@pytest.mark.django_db
def test_bundled_sample_imports_and_is_marked(settings):
    path = settings.BASE_DIR / "survey" / "sample" / "posts.jsonl"
    call_command("import_posts", str(path), "--sample")

    topics = Topic.objects.servable()
    assert topics.filter(language="en").count() >= 8
    assert topics.filter(language="ko").count() >= 4
    assert not Topic.objects.filter(is_sample=False).exists()
    for post in Post.objects.all():
        assert 120 <= post.word_count <= 300, (post.topic.title, post.author_label)
