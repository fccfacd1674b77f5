"""Learning curves: loss and accuracy per epoch, on the training and the test set, as a PNG.

The figure is drawn with matplotlib's Agg canvas directly (no ``pyplot``), so saving it works on a
machine without a display and does not change the plotting backend of a notebook.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_curves(history, path=None, title=None):
    """Plot train/test loss (left) and accuracy (right) against the epoch.

    Inputs:
    - history: list of rows with keys epoch, train_loss, test_loss, train_accuracy, test_accuracy
    - path: where to save the PNG (None: do not save)
    - title: optional title above both panels
    Returns the matplotlib Figure (a notebook shows it when it is the cell's last value).
    """
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, metric, label in zip(figure.subplots(1, 2), ("loss", "accuracy"),
                                   ("cross-entropy loss", "accuracy")):
        for split, style in (("train", "o-"), ("test", "s-")):
            axes.plot(epochs, [row[f"{split}_{metric}"] for row in history], style, label=split)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
