"""Print a count as a table, one row per layer, then the totals and the convention used."""

from tinyinvo.count.measured import count

CONVENTION = ("MACs = multiply-adds; FLOPs = 2 x MACs; papers usually print MACs and call them FLOPs.\n"
              "0 MACs: BatchNorm (folded into the conv before it at inference), bias adds, ReLU, "
              "pooling, residual adds.")


def scaled(n):
    """A count with a unit: 2648505856 -> '2.649 G', 460211 -> '460.2 K'."""
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= factor:
            return f"{n / factor:.{4 - len(str(int(n // factor)))}f} {unit}"
    return str(n)


def format_totals(total):
    """Total params and MACs, and for a network with involutions the MACs without the aggregation."""
    lines = [f"Total params: {total.params:>15,}  ({scaled(total.params)})",
             f"Total MACs:   {total.macs:>15,}  ({scaled(total.macs)})"]
    if total.aggregation_macs:
        without = total.macs - total.aggregation_macs
        share = 100 * total.aggregation_macs / total.macs
        lines.append(f"  without the involution aggregation: {scaled(without)} (the aggregation is "
                     f"{scaled(total.aggregation_macs)} = {share:.1f} % of the MACs)")
    return "\n".join(lines)


def format_rows(rows):
    """One line per layer: name, type, output shape, params, MACs."""
    name_width = max(len("Layer"), *(len(row.name) for row in rows))
    header = f"{'Layer':<{name_width}}  {'Type':<15} {'Output shape':<16} {'Params':>11} {'MACs':>15}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.name:<{name_width}}  {row.type:<15} {str(row.output_shape):<16} "
                     f"{row.cost.params:>11,} {row.cost.macs:>15,}")
    lines.append("=" * len(header))
    return "\n".join(lines)


def summary(model, input_shape, per_layer=True, batch_size=1):
    """Print the per-layer table (if ``per_layer``), the totals and the convention of ``count``.

    Inputs: model; input_shape (C, H, W) of one image; batch_size as in ``count``.
    Returns the Count.
    """
    result = count(model, input_shape, batch_size=batch_size)
    parts = [format_rows(result.rows)] if per_layer else []
    print("\n".join(parts + [format_totals(result.total), CONVENTION]))
    return result
