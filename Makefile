# Two commands: `make run` starts the product, `make test` runs the tests.
# Both set up a virtualenv in .venv from requirements-dev.txt (the product's
# requirements.txt plus the test tools) first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := chatbot.settings
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test setup lint bench-chat bench-nlu bench-replies bench-api bench-analytics clean


$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# Embedded defaults: SQLite, in-process broker and channel layer, demo model.
# The links and logins come last, right above the server's own lines.
run: setup
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput --verbosity 0
	DEBUG=$${DEBUG:-1} $(PY) manage.py bootstrap_demo
	DEBUG=$${DEBUG:-1} $(PY) manage.py seed_analytics --demo --conversations 300
	DEBUG=$${DEBUG:-1} $(PY) manage.py create_demo_users --port $(PORT)
	DEBUG=$${DEBUG:-1} $(PY) manage.py serve --port $(PORT)

# axe-core for the widget's accessibility test (npm, locked in frontend/package-lock.json).
frontend/node_modules/axe-core:
	npm ci --prefix frontend --no-audit --no-fund

test: setup frontend/node_modules/axe-core
	DEBUG=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench-chat: setup
	$(PY) bench/chat_latency.py

bench-nlu: setup
	$(PY) bench/nlu_clinc150.py --mode both
	$(PY) bench/nlu_speed.py

bench-replies: setup
	$(PY) bench/replies_sgd.py

# Needs DATABASE_URL (PostgreSQL) and REDIS_URL.
bench-api: setup
	$(PY) bench/api.py

bench-analytics: setup
	$(PY) bench/analytics.py

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
