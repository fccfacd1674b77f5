"""One module per graded exercise: EXERCISE (its id) and TASKS (its list of Task)."""
