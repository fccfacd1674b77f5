"""Which exercises exist: every module of ``tinyinvo.grading.tasks`` defines one.

A task module defines ``EXERCISE`` (its id, e.g. "01_conv_forward") and ``TASKS`` (a list of Task).
Adding an exercise means adding a module; no list needs editing. Modules whose name starts with "_"
are helpers shared by task modules and are skipped.
"""

import importlib
import pkgutil

from tinyinvo.grading.core import Task

TASKS_PACKAGE = "tinyinvo.grading.tasks"


class CannotGrade(Exception):
    """Grading is impossible (unknown exercise, unreadable notebook, no kernel): not a student's mistake."""


def exercises(package=TASKS_PACKAGE):
    """{exercise id: list of Task} for every task module in ``package``, sorted by id."""
    found, claimed_by = {}, {}
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module_info.name.startswith("_"):
            continue
        module_name = f"{package}.{module_info.name}"
        module = importlib.import_module(module_name)
        exercise, tasks = getattr(module, "EXERCISE", None), getattr(module, "TASKS", None)
        if not isinstance(exercise, str) or not isinstance(tasks, list) \
                or not all(isinstance(task, Task) for task in tasks):
            raise CannotGrade(f"{module_name} must define EXERCISE (a string) and TASKS (a list of Task)")
        if exercise in claimed_by:
            raise CannotGrade(f"two task modules claim exercise {exercise!r}: "
                              f"{claimed_by[exercise]} and {module_name}")
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            raise CannotGrade(f"{module_name}: two tasks have the same name in {names}")
        found[exercise], claimed_by[exercise] = tasks, module_name
    return dict(sorted(found.items()))


def tasks_for(exercise, package=TASKS_PACKAGE):
    """The list of Task of one exercise; a CannotGrade error names the known ids if it is unknown."""
    known = exercises(package)
    if exercise not in known:
        raise CannotGrade(f"unknown exercise {exercise!r}; the exercises are: {', '.join(known) or 'none'}")
    return known[exercise]
