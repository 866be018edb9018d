# Thin wrappers over tools/dev.py, which works the same on Windows (py tools\dev.py ...).
PYTHON ?= python3

.PHONY: run test bench setup package-test
run:
	$(PYTHON) tools/dev.py run
test:
	$(PYTHON) tools/dev.py test
bench:
	$(PYTHON) tools/dev.py bench
setup:
	$(PYTHON) tools/dev.py setup
package-test:
	$(PYTHON) packaging/check.py
