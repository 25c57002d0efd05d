# Two commands a new user needs: `make run` and `make test`. Both create the environment when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= disabled
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test lab export readme docs clean lock notebooks-test pytest

# Reinstall only when the requirements, the set-up or the lock changed.
$(STAMP): settings.ini setup.py constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"ainative needs Python 3.11, found {sys.version.split()[0]}; set PYTHON=/path/to/python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the pinned environment: every extra (`all`) and the dev tools

run: $(STAMP)  ## the main job: the pipeline on the bundled defaults
	$(BIN)/ainative pipeline $(ARGS)

test: $(STAMP)  ## every notebook (nbdev_test), then the pytest suite
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest tests -p no:cacheprovider $(PYTEST_ARGS)

lab: $(STAMP)  ## JupyterLab on the chapters, with this environment as the kernel (LAB_ARGS="--port 8890 --no-browser")
	$(BIN)/jupyter lab --ServerApp.root_dir=nbs $(LAB_ARGS) nbs/getting_started.ipynb

export: $(STAMP)  ## notebooks -> ainative/
	$(BIN)/nbdev_export

readme: $(STAMP)  ## nbs/index.ipynb -> README.md
	$(BIN)/python -c "from ainative.docs import write_readme; write_readme()"

docs: $(STAMP)  ## the documentation site in _docs/, from the notebooks, without Quarto (`nbdev_docs` where Quarto is)
	$(BIN)/python -c "from ainative.docs import build_site; print(f'site written to {build_site()}/ (index.html)')"

clean: $(STAMP)  ## strip notebook metadata noise (keeps the `parameters` tag)
	$(BIN)/nbdev_clean

lock: $(STAMP)  ## rewrite constraints.txt from the current environment
	@{ echo "# The lock: exact versions of every package, used as pip constraints by \`make setup\`."; \
	   echo "# Regenerate with \`make lock\` after changing requirements in settings.ini."; \
	   $(BIN)/python -m pip freeze --exclude-editable | grep -v '^ainative' | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/'; \
	   echo "onnxruntime==$$($(BIN)/python -c 'import onnxruntime; print(onnxruntime.__version__)')"; } > constraints.txt
