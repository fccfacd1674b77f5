"""Exact parameter and multiply-add (MAC) counts, two independent ways.

- ``formulas``: the closed-form cost of each layer type, with the counting convention.
- ``analytic_cost(config, input_size)``: a whole network from its config alone, on paper.
- ``count(model, input_shape)``: a built model, measured on a forward pass, per layer.
- ``summary(model, input_shape)``: ``count`` printed as a table.
- ``solve_width(block, op, depth, target_macs)``: the width that meets a MAC budget.
- ``solve_budget(block, op, depth, target_macs)``: width and knobs (expansion, divisor) within 5%.
"""

from tinyinvo.count.analytic import analytic_cost, solve_budget, solve_width
from tinyinvo.count.formulas import Cost
from tinyinvo.count.measured import Count, Row, count
from tinyinvo.count.table import summary

__all__ = ["Cost", "Count", "Row", "analytic_cost", "count", "solve_budget", "solve_width",
           "summary"]
