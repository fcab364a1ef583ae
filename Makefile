# Entry points: `make run` (the pipeline), `make lock`, `make test`, `make test-fast`,
# `make test-docs`, `make test-isa`, `make lint`, `make docs`, `make bench`, `make bench-smoke`,
# `make noise-floor`, `make recipe-check`, `make review`, `make release`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# Stage commands in dvc.yaml call `python`: put the venv first so they use its packages.
export PATH := $(BIN):$(PATH)
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: run lock test test-fast test-docs test-isa lint format docs docs-serve bench bench-smoke noise-floor compare recipe-check review review-template \
	review-screenshot mutation release clean

# Installs come from the locks (every package at one version, with its hashes; `make lock`
# resolves them from requirements*.txt), so what was tested is what runs.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes

$(VENV)/.runtime: requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.lock
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(PIP_INSTALL) -r requirements-dev.lock
	touch $@

# The venv against the lock first: a package moved by hand says so before an hour of training.
run: $(VENV)/.runtime
	$(BIN)/python -m stages.environment drift
	$(BIN)/dvc repro

# Re-resolve both locks after an edit of requirements*.txt; one package on purpose:
# make lock UPGRADE=keras (docs/upgrading.md)
lock: $(VENV)/.dev
	$(BIN)/python -m stages.environment lock $(foreach p,$(UPGRADE),--upgrade-package $(p))

# Tests run in parallel workers (pytest-xdist); a worker that runs out steals from the other.
# PYTEST_ARGS: more of pytest's options (bench/quickstart.py asks for a JUnit XML report).
TEST_WORKERS ?= 2
PYTEST_ARGS ?=

test: $(VENV)/.dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not docs" $(PYTEST_ARGS)

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

# Every shell block of the README and docs/, run as written on a small project, a section at a time
# (tests/test_docs_commands.py); longer than the rest of the suite, so apart from `make test`.
test-docs: $(VENV)/.dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m docs $(PYTEST_ARGS)

# Other CPUs, as far as this one can stand in for them: the tests that train, once per setting
# that bench/ISA.md measured to move a training trajectory here (an AVX2 CPU, TensorFlow's own
# kernels, one thread), but the docs walk-through (`make test-docs`). ISA_TESTS="trains and not slow"
# for the quicker subset CI runs.
ISA_TESTS ?= trains and not docs
ISA_SETTINGS := "ONEDNN_MAX_CPU_ISA=AVX2" "TF_ENABLE_ONEDNN_OPTS=0" \
	"TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1"

test-isa: $(VENV)/.dev
	$(BIN)/python -m bench.isa
	for setting in $(ISA_SETTINGS); do \
		echo "== $$setting"; \
		env $$setting $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "$(ISA_TESTS)" || exit 1; \
	done

# The locks current with requirements*.txt; style; and the architecture: the import contracts
# of .importlinter (layers, independence, no circles; stages/shared/__init__.py draws them).
lint: $(VENV)/.dev
	$(BIN)/python -m stages.environment check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site (mkdocs.yml): the params reference regenerated from the schema and
# params.yaml, then built into site/ with --strict; it works offline (open site/index.html).
docs: $(VENV)/.dev
	$(BIN)/python -m stages.params_reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.dev
	$(BIN)/python -m stages.params_reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# Every benchmark and recipe entry point once at toy size, in a copy of the tree (CI runs it:
# an entry point that broke fails here, not in the next measurement). bench/smoke.py
bench-smoke: $(VENV)/.dev
	$(BIN)/python -m bench.smoke

# Is B better than A beyond seed noise? make compare A=main B=my-branch SEEDS=5 [MODEL=detector]
# GATE=1: exit 1 when B is worse (a CI gate; stages/compare.py --fail-if-worse)
compare: $(VENV)/.runtime
	$(BIN)/python -m stages.compare $(A) $(B) --seeds $(or $(SEEDS),5) --model $(or $(MODEL),classifier) \
		$(if $(GATE),--fail-if-worse)

# How much the test metrics move across seeds, oneDNN, CPU instruction sets (~80 min).
noise-floor: $(VENV)/.dev
	$(BIN)/python -m bench.noise_floor

# Do the default params hold on photographs they were not tuned on? (bench/RECIPE_CHECK.md)
recipe-check: $(VENV)/.dev
	ONLY=$(ONLY) SEEDS=$(SEEDS) $(BIN)/python -m bench.recipe_check

# The review page, workspace vs REV (default: the last commit), offline: make review REV=main
review: $(VENV)/.runtime
	$(BIN)/python -m stages.review $(or $(REV),HEAD)

# Mutation score of each module against its own fast tests (mutmut; bench/MUTATION.md).
# A change's files only: make mutation FILES="stages/shared/evaluation/metrics.py stages/split.py"
# At most 50 mutants a module (a seeded sample); every mutant: make mutation SAMPLE=0
mutation: $(VENV)/.dev
	$(BIN)/python -m bench.mutation $(if $(SAMPLE),--sample $(SAMPLE)) $(FILES)

# Register this commit's model (and its exports) as a version, as GTO git tags, and optionally
# assign a stage: make release MODEL=classifier VERSION=v1.0.0 [STAGE=prod]. With an existing
# VERSION and a STAGE, assigns the stage only. See docs/ship.md.
release: $(VENV)/.runtime
	$(BIN)/python -m stages.release $(MODEL) $(VERSION) $(if $(STAGE),--stage $(STAGE))

# Rewrite review/template.html from the installed vl-convert (after bumping its pin).
review-template: $(VENV)/.runtime
	$(BIN)/python -m stages.review --template

# The README's screenshot of the review page, as the browser test sees it.
review-screenshot: $(VENV)/.dev
	REVIEW_SCREENSHOT=$(CURDIR)/docs/review-page.png $(BIN)/python -m pytest -q -m browser

clean:
	rm -rf .work .pytest_cache .ruff_cache site
