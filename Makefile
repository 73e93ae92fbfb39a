# The two commands: `make demo` (runs the product on its embedded default) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-fast lint serve worker bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The demo needs no torch: the web process and CPU metrics only.
$(VENV)/.demo-deps: requirements/base.txt requirements/metrics-cpu.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements/base.txt -r requirements/metrics-cpu.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements/*.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@ $(VENV)/.demo-deps

demo: $(VENV)/.demo-deps
	./scripts/system-deps.sh
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	@echo "VidJudge demo at http://$(HOST):$(PORT)/  (manager / demo, rater1 / demo, rater2 / demo)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload

test: $(VENV)/.dev-deps
	./scripts/system-deps.sh --browser
	./scripts/services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .

serve: $(VENV)/.demo-deps
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: $(VENV)/.dev-deps
	$(BIN)/celery -A config worker -Q media,metrics,default -l info

bench: $(VENV)/.dev-deps
	./scripts/services.sh
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var/media var/test-media var/vidjudge.sqlite3*
