"""Which exercises exist: every module of ``tinyinvo.grading.tasks`` defines one.

A task module defines ``EXERCISE`` (its id, e.g. "01_conv_forward") and ``TASKS`` (a list of Task),
and may define ``WRITTEN`` ({title: id of the markdown cell}: answers the instructor reads and
grades by hand). Adding an exercise means adding a module; no list needs editing. Checks shared by
several exercises live in the module of the exercise that introduces them (e.g. the conv cases and
helpers in conv_forward.py, imported by conv_backward.py and depthwise.py).

A module that cannot be imported, or defines no valid exercise, is left out and reported by
``problems``: a broken module never stops the other exercises from being graded.
"""

import importlib
import pkgutil

from tinyinvo.grading.core import Task

TASKS_PACKAGE = "tinyinvo.grading.tasks"


class CannotGrade(Exception):
    """Grading is impossible (unknown exercise, unreadable notebook, no kernel): not a student's mistake."""


def load(package=TASKS_PACKAGE):
    """({exercise id: module}, [problem]) for the modules of ``package``."""
    found, problems = {}, []
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module_name = f"{package}.{module_info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # a broken module: report it, grade the others
            problems.append(f"{module_name} cannot be imported: {type(error).__name__}: {error}")
            continue
        exercise, tasks = getattr(module, "EXERCISE", None), getattr(module, "TASKS", None)
        names = [task.name for task in tasks] if isinstance(tasks, list) else []
        if not isinstance(exercise, str) or not isinstance(tasks, list) \
                or not all(isinstance(task, Task) for task in tasks):
            problems.append(f"{module_name} must define EXERCISE (a string) and TASKS (a list of Task)")
        elif len(set(names)) != len(names):
            problems.append(f"{module_name}: two tasks have the same name in {names}")
        elif exercise in found:
            problems.append(f"two task modules claim exercise {exercise!r}: {found[exercise].__name__} and "
                            f"{module_name}; neither is graded")
            found[exercise] = None
        else:
            found[exercise] = module
    return {exercise: module for exercise, module in sorted(found.items()) if module is not None}, problems


def exercises(package=TASKS_PACKAGE):
    """{exercise id: list of Task} for every valid task module in ``package``, sorted by id."""
    return {exercise: module.TASKS for exercise, module in load(package)[0].items()}


def problems(package=TASKS_PACKAGE):
    """What is wrong with the modules that ``exercises`` left out (empty when all are fine)."""
    return load(package)[1]


def module_for(exercise, package=TASKS_PACKAGE):
    """The task module of one exercise; a CannotGrade error names the known ids if it is unknown."""
    known, broken = load(package)
    if exercise not in known:
        also = f" (left out: {'; '.join(broken)})" if broken else ""
        raise CannotGrade(f"unknown exercise {exercise!r}; the exercises are: {', '.join(known) or 'none'}{also}")
    return known[exercise]


def tasks_for(exercise, package=TASKS_PACKAGE):
    """The list of Task of one exercise."""
    return module_for(exercise, package).TASKS


def written_for(exercise, package=TASKS_PACKAGE):
    """{title: markdown cell id} of the answers of one exercise that the instructor grades by hand."""
    return dict(getattr(module_for(exercise, package), "WRITTEN", {}))
