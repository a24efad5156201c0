"""``mvt4g demo``: the whole method on the embedded CPU configuration, with a report.

Python: ``run_demo(DemoSettings(out=Path("demo")))``; see :mod:`mvt4g.demo.runner`.
"""

from mvt4g.demo.runner import DemoResult, run_demo
from mvt4g.demo.settings import DemoSettings

__all__ = ["DemoResult", "DemoSettings", "run_demo"]
