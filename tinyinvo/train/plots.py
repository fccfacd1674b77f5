"""Learning curves: loss and accuracy (in %) per epoch, on the training and the test set, as a PNG.

The figure is drawn with matplotlib's Agg canvas directly (no ``pyplot``), so saving it works on a
machine without a display and does not change the plotting backend of a notebook. The PNG is
written atomically: a full disk keeps the previous one, never a truncated file.
"""

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tinyinvo.plumbing import atomic_write


def plot_curves(history, path=None, title=None):
    """Plot train/test loss (left) and accuracy in % (right) against the epoch.

    Inputs:
    - history: list of rows with keys epoch, train_loss, test_loss, train_accuracy, test_accuracy
      (accuracies as fractions, 0..1)
    - path: where to save the PNG (None: do not save)
    - title: optional title above both panels, e.g. the model, its width, the data and the recipe
    Returns the matplotlib Figure (a notebook shows it when it is the cell's last value).
    """
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    for axes, metric, label, scale in zip(figure.subplots(1, 2), ("loss", "accuracy"),
                                          ("cross-entropy loss", "accuracy (%)"), (1, 100)):
        for split, style in (("train", "o-"), ("test", "s-")):
            axes.plot(epochs, [scale * row[f"{split}_{metric}"] for row in history], style,
                      label=split)
        axes.set_xlabel("epoch")
        # whole epochs only: a metric exists once per epoch, never at epoch 1.5
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            axes.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title, fontsize="medium")
    if path is not None:
        atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=100))
    return figure
