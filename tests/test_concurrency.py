"""Concurrent writers on the real database file, as several gunicorn threads are."""

import re
import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from survey.models import Participant, Response
from tests.factories import make_survey, make_topic

THREADS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_answer_at_once():
    survey = make_survey(slug="crowd", rounds_per_participant=3)
    for index in range(5):
        make_topic(survey, title=f"Topic {index}")
    url = reverse("survey:round", args=[survey.slug])

    clients = []
    for _ in range(THREADS):
        client = Client()
        client.post(reverse("survey:welcome", args=[survey.slug]), {"consent": "on"})
        clients.append(client)

    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def take_survey(client: Client) -> None:
        try:
            for _round in range(3):
                page = client.get(url)
                # The page's HTML, not page.context: the test client collects
                # template contexts through a global signal, which threads share.
                html = page.content.decode()
                response_id = re.search(r'name="response" value="(\d+)"', html).group(1)
                post_ids = re.findall(r'name="guessed_human" value="(\d+)"', html)
                barrier.wait(timeout=30)
                # Every thread posts its ballot at the same moment, twice, as a
                # double tap would.
                for _tap in range(2):
                    response = client.post(
                        url,
                        {
                            "response": response_id,
                            "guessed_human": post_ids[0],
                            "preferred": post_ids[1],
                        },
                    )
                    with lock:
                        statuses.append(response.status_code)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take_survey, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert statuses == [303] * (THREADS * 3 * 2)
    assert Response.objects.answered().count() == THREADS * 3
    assert Response.objects.count() == THREADS * 3
    assert Participant.objects.filter(finished_at__isnull=True).count() == THREADS
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
