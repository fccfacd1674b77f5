# The attack notebooks are graded by tests/test_grading_attacks.py, never run as notebooks by nbval:
# one of them kills the process that runs it.
collect_ignore_glob = ["*.ipynb"]
