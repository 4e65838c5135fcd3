"""gunicorn settings for the app server; environment variables override them.

Bind address: GUNICORN_BIND, else 127.0.0.1:$PORT (PORT defaults to 8000).
"""

import os

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
wsgi_app = "survey.wsgi:application"

# gthread workers let a worker keep serving while one request waits on the
# database; the counts are sized for a 2-core machine.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5

# Restart workers now and then so that a slow leak cannot grow for a whole event.
max_requests = 5000
max_requests_jitter = 500

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# %(M)s is the request time in milliseconds. The client address is left out on
# purpose, so that the logs keep no IP address of an attendee.
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
