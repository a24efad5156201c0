"""``mvt4g demo``: the shipped base fine-tuned with and without tracking supervision, with a report.

Python: ``run_demo(DemoSettings(out=Path("demo")))``; see :mod:`mvt4g.demo.runner`.
"""

from mvt4g.demo.settings import DemoSettings

__all__ = ["DemoResult", "DemoSettings", "run_demo"]


def __getattr__(name: str):
    # The runner pulls in torch and the trainer: loaded on first use, so that the CLI (which
    # reads the demo's defaults when it starts) stays fast for every other command.
    if name in ("DemoResult", "run_demo"):
        from mvt4g.demo import runner

        return getattr(runner, name)
    raise AttributeError(name)
