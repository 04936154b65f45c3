# make run    set up .venv (if needed), then run the workflow on the embedded scene (quick preset)
# make test   set up .venv (if needed), then run the tests
# make setup  create .venv with the pinned dependencies and lfcomp (idempotent; quick when done)

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.lfcomp-setup
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?= -n 2 --dist loadscope

.PHONY: setup run report test lint clean

setup: $(STAMP)

# Redone only when the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt -e .
	touch $@

run: setup
	$(VENV)/bin/snakemake --profile profiles/local $(SNAKEMAKE_ARGS)
	$(VENV)/bin/snakemake --profile profiles/local $(SNAKEMAKE_ARGS) --report results/report.html
	@echo
	@echo "Results are in $(CURDIR)/results/ (<scene>/<model>/r<rank>/n<centroids>/ per rate point);"
	@echo "rate-point table: $(CURDIR)/results/summary.md (and .csv); logs and per-rule benchmarks: $(CURDIR)/logs/"
	@echo "tables (Table 1: summary/bd_psnr.md, Table 2: summary/stages.md), figures (summary/figures/),"
	@echo "free-viewpoint clip (<scene>/<model>/free_viewpoint.gif) and the HTML report: $(CURDIR)/results/report.html"
	@echo
	@cat results/summary.md

# The test workers share the cores (each torch process starts with a thread per core): OpenMP threads
# that spin while they wait would slow them many times over. The workflow's jobs get their own cores.
test: export OMP_WAIT_POLICY ?= PASSIVE
test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

report: setup
	$(VENV)/bin/snakemake --profile profiles/local $(SNAKEMAKE_ARGS) --report results/report.html

lint: setup
	$(VENV)/bin/snakemake --lint

clean:
	rm -rf results logs .snakemake
