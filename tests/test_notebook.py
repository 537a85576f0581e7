"""The example notebook (notebooks/explore_subgraphs.ipynb) runs top to bottom (nbclient, one
kernel) and shows what it promises: summaries as tables and a drawing."""
import os

import pytest

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

HERE = os.path.dirname(__file__)
NOTEBOOK = os.path.join(os.path.dirname(HERE), "notebooks", "explore_subgraphs.ipynb")


def test_example_notebook_runs_and_shows_tables_and_a_drawing(tmp_path, monkeypatch):
  import nbclient
  import nbformat
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel writes its graph there
  nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  tables = [o for o in outputs if "text/html" in o.get("data", {})]
  images = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(tables) >= 5 and len(images) == 1
  summary = tables[1]["data"]["text/html"]  # sub.summary(): one row per seed
  assert "nodes/paper" in summary and "edges/cites" in summary
