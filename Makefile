# The front door. `make run` starts the product; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DJANGO_SETTINGS_MODULE ?= config.settings

# Tests and benchmarks use the local PostgreSQL and Redis unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/backoffice
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_ENV = DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	SECRET_KEY=$${SECRET_KEY:-local-test-secret-key-not-for-production}

.PHONY: install run admin-password test lint format bench up down migrations-check clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate

run: install  ## embedded demo: SQLite, tasks and schedules in-process, http://127.0.0.1:8000/
	env -u DATABASE_URL $(BIN)/python manage.py migrate --noinput
	env -u DATABASE_URL $(BIN)/python manage.py seed
	env -u DATABASE_URL $(BIN)/python manage.py demo 127.0.0.1:8000

admin-password: install  ## a new generated password for the embedded demo's admin user
	env -u DATABASE_URL $(BIN)/python manage.py demo --new-admin-password

test: install  ## full suite against PostgreSQL and Redis
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: install  ## style, types, the import contracts (.importlinter), migrations, Dockerfile, compose file
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(TEST_ENV) $(BIN)/mypy .
	$(BIN)/lint-imports --no-logo
	env -u DATABASE_URL $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## benchmarks against gunicorn + PostgreSQL; figures go to docs/benchmarks.md by hand
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)_bench} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/python -m bench

up:
	docker compose up --build

down:
	docker compose down
