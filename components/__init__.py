"""tfx-gnn's TFX components (`tfx_gnn.components`), one package each: `component.py` (the
spec), `config.py` (its section of the run config), `executor.py` (thin TFX glue) and the
logic as plain functions. Code shared by several components lives once, here at the top."""
import importlib.util
import sys


def defer_package_init(name: str) -> None:
  """Makes `import name.sub` skip `name/__init__.py` until one of its own names is used.

  TFX's orchestration imports `tfx.components.evaluator.constants` (through its input
  resolution ops), and Python runs `tfx/components/__init__.py` first, which imports every
  TFX component and so keras_tuner and Keras 3: about 4 s of start-up, for nothing we use.
  The package's submodules import as usual; `from tfx.components import Evaluator` still
  works: the first such name runs the real `__init__`.
  """
  if name in sys.modules:
    return
  parent, _, child = name.rpartition(".")
  spec = importlib.util.find_spec(name)
  if spec is None or spec.submodule_search_locations is None:
    return
  module = importlib.util.module_from_spec(spec)

  def __getattr__(attr):  # PEP 562: only for names the module does not have yet
    del module.__getattr__
    spec.loader.exec_module(module)
    return getattr(module, attr)

  module.__getattr__ = __getattr__
  sys.modules[name] = module
  if parent:
    setattr(importlib.import_module(parent), child, module)


defer_package_init("tfx.components")
