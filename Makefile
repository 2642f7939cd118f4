# `make test` works on a fresh clone: it creates .venv, installs the project with
# its test extras, and runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test install clean bench run browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests and shellcheck (SKIP_BROWSER=1 skips the install;
# the browser tests then fail unless APPLIANCE_SKIP_BROWSER_TESTS=1 too).
browser:
	@if [ -z "$(SKIP_BROWSER)" ]; then scripts/install-test-deps.sh; fi

# pytest exits 5 when it collects no test: report it, don't fail on it.
# Screenshots of every page are saved under screenshots/ by tests/test_web_browser.py.
# The suite runs on every core (pytest-xdist, TEST_JOBS=auto; TEST_JOBS=0 runs it in one
# process); tests marked `serial` (they restart the shared PostgreSQL server) run after it, alone.
TEST_JOBS ?= auto
test: $(STAMP) browser
	@$(BIN)/python -m pytest -n $(TEST_JOBS) -m "not serial" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; \
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS); rc2=$$?; \
	if [ $$rc2 -eq 5 ]; then rc2=0; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; exit $$rc2

# `make run`: the demo — the daemon on two simulated modems, database under ./var/.
PORT ?= 8080
run: $(STAMP)
	@mkdir -p var
	@export APPLIANCE_APPLIANCE__DATABASE_URL="sqlite:///$(CURDIR)/var/appliance.db"; \
	if [ ! -s var/admin.key ] || [ ! -f var/appliance.db ]; then \
		out=$$($(BIN)/appliance keys create make-run --scope admin) || exit 1; \
		printf '%s\n' "$$out" | tail -n 1 > var/admin.key; \
	fi; \
	if [ ! -s var/web.password ]; then \
		pw=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
		printf '%s\n' "$$pw" | $(BIN)/appliance users create admin --role admin --password-stdin >/dev/null \
			|| printf '%s\n' "$$pw" | $(BIN)/appliance users password admin --password-stdin >/dev/null || exit 1; \
		printf '%s\n' "$$pw" > var/web.password; \
	fi; \
	echo "Web pages:     http://127.0.0.1:$(PORT)/  (sign in as admin, password $$(cat var/web.password))"; \
	echo "API:           http://127.0.0.1:$(PORT)"; \
	echo "Docs:          http://127.0.0.1:$(PORT)/docs"; \
	echo "Admin API key: $$(cat var/admin.key)"; \
	echo "Try:  curl -H \"Authorization: Bearer $$(cat var/admin.key)\" http://127.0.0.1:$(PORT)/v1/modems"; \
	exec $(BIN)/appliance serve --simulate 2 --port $(PORT)

bench: $(STAMP)
	@for b in bench/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

# On a Raspberry Pi OS / Debian box: install system-wide (venv in /opt/appliance, systemd
# unit, udev rules, config in /etc/appliance). See hardware.md.
.PHONY: install-pi uninstall-pi
install-pi:
	sudo scripts/install.sh

uninstall-pi:
	sudo scripts/install.sh --uninstall
