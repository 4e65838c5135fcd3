"""gunicorn settings for the app server; environment variables override them.

Bind address: GUNICORN_BIND, else 127.0.0.1:$PORT (PORT defaults to 8000).
"""

import os

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
wsgi_app = "survey.wsgi:application"

# gthread workers let a worker keep serving while one request waits on the
# database; the counts are sized for a 2-core machine. In the booth spike
# benchmark on 2 cores, 3 sync workers were not faster than 3 gthread workers
# with 4 threads each (docs/benchmarks.md, "Booth spike").
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Attendees send their next request 5 to 20 s after the last one. With a short
# keep-alive the server closes idle connections just as clients reuse them,
# which the booth spike benchmark counted as errors; 75 s outlasts a round.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))

# Restart workers now and then so that a slow leak cannot grow for a whole event.
# Workers start together and take turns at requests, so a narrow jitter would
# restart all of them within seconds, and each restart spends seconds of CPU on
# imports and the results cache warm-up. A wide jitter spreads the restarts.
max_requests = 20000
max_requests_jitter = 10000

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# %(M)s is the request time in milliseconds. The client address is left out on
# purpose, so that the logs keep no IP address of an attendee.
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'


def post_worker_init(worker):
    """Load the URLconf and warm the results cache before the worker's first request.

    Without this, the first request of every new worker imports the results
    views and SciPy, and the first results page builds every row, which stalls
    attendees behind it for seconds.
    """
    import threading

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - importing the views is the point

    def warm_results_cache():
        from django.db import connections

        from survey.stats_cache import warm_open_surveys

        try:
            surveys = warm_open_surveys()
            worker.log.info("results cache warmed surveys=%s", surveys)
        except Exception:
            worker.log.exception("results cache warm-up failed; pages load it on demand")
        finally:
            connections.close_all()

    threading.Thread(target=warm_results_cache, name="warm-results-cache", daemon=True).start()
