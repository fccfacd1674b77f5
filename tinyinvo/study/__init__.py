"""The apples-to-apples study: ResNet, RedNet and depthwise / inverted-bottleneck nets trained with
one recipe and the same seeds at one MAC budget (``python -m tinyinvo compare``).

- ``grid``: which models, and the width (and knobs) that puts each on the budget
- ``runs``: one run = a pure function of its config, returning its result row
- ``results``: results.csv (atomic rewrite, finished runs skipped), runs submitted to an executor
- ``executors``: where runs execute: this process, a local process pool, or a Dask cluster
- ``plots``: accuracy vs MACs / params / CPU time, and the published ImageNet figures
- ``command``: the command line
"""

from tinyinvo.study.executors import make_executor
from tinyinvo.study.grid import STUDY_MODELS, ModelSpec, parse_macs, solve_grid
from tinyinvo.study.results import read_results, run_missing, write_results
from tinyinvo.study.runs import Run, train_run

__all__ = ["STUDY_MODELS", "ModelSpec", "Run", "make_executor", "parse_macs", "read_results", "run_missing",
           "solve_grid", "train_run", "write_results"]
