"""Score reports: a table for people, a dict (JSON) for programs.

    01_conv_forward
    task                points  status           message
    ------------------  ------  ---------------  --------------------------------------------------
    pad_input              1/1  passed
    conv_forward_naive     0/3  failed           conv_forward_naive(x: (2, 3, 7, 9) float64, ...):
                                                 the result is wrong at index (0, 1, 2, 3): ...
    ------------------  ------
    total                  1/4
"""

import textwrap
from dataclasses import asdict

from tinyinvo.grading.core import ERROR, FAILED, NOT_IMPLEMENTED, PASSED, TaskResult

WIDTH = 100  # a fixed width, so that a table stored in a notebook is the same on every screen
MAX_MESSAGE_LINES = 8


def total(results):
    """(points scored, points possible) over a list of TaskResult."""
    return sum(result.points for result in results), sum(result.max_points for result in results)


def score_table(results, title=None):
    """The results as a text table, one row per task (messages wrapped), then the total."""
    name_width = max(len("task"), len("total"), *(len(result.name) for result in results))
    status_width = max(len(status) for status in (PASSED, FAILED, NOT_IMPLEMENTED, ERROR))
    indent = name_width + 2 + 6 + 2 + status_width + 2  # where the message column starts
    message_width = max(40, WIDTH - indent)
    wrapper = textwrap.TextWrapper(width=message_width, max_lines=MAX_MESSAGE_LINES, placeholder=" ...")

    def row(name, points, status="", message=""):
        return f"{name:<{name_width}}  {points:>6}  {status:<{status_width}}  {message}".rstrip()

    lines = [title] if title else []
    lines += [row("task", "points", "status", "message"),
              row("-" * name_width, "-" * 6, "-" * status_width, "-" * message_width)]
    for result in results:
        # wrap each line of the message on its own: a message may have several
        message_lines = [wrapped for line in result.message.splitlines()
                         for wrapped in wrapper.wrap(line)][:MAX_MESSAGE_LINES] or [""]
        lines.append(row(result.name, f"{result.points}/{result.max_points}", result.status, message_lines[0]))
        lines += [" " * indent + line for line in message_lines[1:]]
    points, max_points = total(results)
    lines += [row("-" * name_width, "-" * 6), row("total", f"{points}/{max_points}")]
    return "\n".join(lines)


class Report(list):
    """The TaskResults of one exercise (a list), with the exercise id, the notebook graded (if any),
    its written answers ({title: text}, for the instructor to grade by hand) and the lines of code the
    instructor should read (they reach into the grading or the process)."""

    def __init__(self, results, exercise, notebook=None, written=None, to_read=()):
        super().__init__(results)
        self.exercise = exercise
        self.notebook = notebook
        self.written = dict(written or {})
        self.to_read = list(to_read)

    def table(self):
        title = self.exercise if self.notebook is None else f"{self.notebook} (exercise {self.exercise})"
        notes = [f"to read: {line}" for line in self.to_read]
        return "\n".join([score_table(self, title), *notes])

    def as_dict(self):
        """The report as a dict ready for json.dumps (what ``grade --json`` prints)."""
        points, max_points = total(self)
        return {"notebook": self.notebook, "exercise": self.exercise,
                "tasks": [asdict(result) for result in self],  # name, points, max_points, status, message
                "points": points, "max_points": max_points, "written": self.written, "to_read": self.to_read}

    @classmethod
    def from_dict(cls, data):
        """The Report that ``as_dict`` gave ``data``."""
        results = [TaskResult(**{key: task[key] for key in TaskResult.__dataclass_fields__ if key in task})
                   for task in data["tasks"]]
        return cls(results, data["exercise"], notebook=data["notebook"], written=data.get("written"),
                   to_read=data.get("to_read", ()))

    def __repr__(self):  # short: in a notebook the table has been printed already
        points, max_points = total(self)
        return f"<{self.exercise}: {points}/{max_points} points>"
