"""The notebooks run top to bottom offline, on the scripted stub model (LLMXMR_NOTEBOOK_MODEL=stub): a failing
cell fails the test. Needs the `notebooks` extra (nbclient, nbformat, ipykernel; matplotlib for the plot);
deselect with `-m "not notebooks"`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")
nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")
pytest.importorskip("ipykernel", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')")

pytestmark = [pytest.mark.notebooks, pytest.mark.timeout(300)]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CLEARED = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs_on_the_stub(name, monkeypatch):
    monkeypatch.setenv("LLMXMR_NOTEBOOK_MODEL", "stub")  # the kernel inherits this environment
    for var in CLEARED:
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: commit it without outputs"
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError with the cell and its traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_every_notebook_is_present():
    names = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert {"01_quickstart.ipynb", "02_refinement_loop.ipynb", "03_embedding.ipynb"} <= names
    assert (NOTEBOOKS / "nb_setup.py").is_file()
