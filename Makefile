# Entry points: `make demo` (set up and serve the sample survey) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 8000
export PORT

# uv needs Python 3.13. Under pyenv it becomes visible once PYENV_VERSION names it.
PYENV_313 := $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | tail -1)
ifneq ($(PYENV_313),)
export PYENV_VERSION ?= $(PYENV_313):$(shell pyenv global 2>/dev/null | head -1)
endif

UV := uv
RUN := $(UV) run --frozen

.PHONY: help install messages demo demo-setup serve test browser clean bench

help:
	@echo "make demo   install, migrate, load the sample survey and serve it on http://127.0.0.1:$(PORT)"
	@echo "make test   run the whole test suite (SQLite; set DATABASE_URL for PostgreSQL)"

install:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

messages: install
	@command -v msgfmt >/dev/null 2>&1 || { echo "msgfmt not found: install gettext (apt-get install gettext)"; exit 1; }
	DJANGO_DEBUG=1 $(RUN) python manage.py compilemessages --ignore=.venv -v0

var/secret-key:
	@mkdir -p var
	@python3 -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

demo-setup: messages var/secret-key
	$(RUN) python manage.py migrate --noinput -v0
	$(RUN) python manage.py createcachetable
	$(RUN) python manage.py import_posts survey/sample/posts.jsonl --sample
	$(RUN) python manage.py collectstatic --noinput -v0
	$(RUN) python manage.py create_organizer --password-file var/organizer-password

demo: export DJANGO_SECRET_KEY ?= $(shell cat var/secret-key 2>/dev/null)
demo: export DJANGO_ALLOWED_HOSTS ?= 127.0.0.1,localhost
demo: export DJANGO_DEBUG ?= 0
demo: demo-setup
	@echo "Serving the survey on http://127.0.0.1:$(PORT)/  (organizer pages at /admin/; Ctrl-C stops)"
	bin/serve

browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium not found: install Debian's chromium package (sudo apt-get install chromium)"; exit 1; fi; }

test: messages browser
	$(RUN) pytest $(PYTEST_ARGS)

# The booth spike benchmark (docs/benchmarks.md); its last line is RESULT key=value ...
bench: export BENCH_USERS ?= 1000
bench: export BENCH_SPAWN_SECONDS ?= 60
bench: export BENCH_DURATION ?= 180
bench: export DATABASE_URL ?=
bench:
	$(RUN) python loadtests/bench.py

clean:
	rm -rf staticfiles .pytest_cache test-artifacts
