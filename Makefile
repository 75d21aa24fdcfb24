# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo/out

.PHONY: demo test bench clean

$(BIN)/photochrom: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/photochrom
	rm -rf $(DEMO)
	$(BIN)/python demo/make_scans.py $(DEMO)/scans
	$(BIN)/photochrom ingest $(DEMO)/scans --db $(DEMO)/archive.db
	$(BIN)/photochrom scans list --db $(DEMO)/archive.db
	$(BIN)/photochrom hints validate $(DEMO)/hints --db $(DEMO)/archive.db
	$(BIN)/photochrom restore --db $(DEMO)/archive.db --out $(DEMO)/restored --hints $(DEMO)/hints
	$(BIN)/photochrom jobs list --db $(DEMO)/archive.db
	$(BIN)/photochrom export $(DEMO)/site --db $(DEMO)/archive.db
	@echo "Catalog: $(DEMO)/archive.db   Scans: $(DEMO)/scans   Results: $(DEMO)/restored   Site: $(DEMO)/site/index.html"

test: $(BIN)/photochrom
	$(BIN)/python -m pytest

bench: $(BIN)/photochrom
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/restore.py
	$(BIN)/python bench/global_pass.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/editor.py

clean:
	rm -rf $(VENV) $(DEMO) bench/out
