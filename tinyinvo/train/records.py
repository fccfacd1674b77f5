"""What a run leaves in its folder after each epoch, besides the checkpoint: ``config.json``
(how the run was made), ``metrics.csv`` / ``metrics.jsonl`` and ``curves.png``.

Every file is written atomically (``tinyinvo.plumbing.atomic_write``): a full disk stops the run
with an OSError and keeps the previous file.
"""

import json
import os

from tinyinvo.plumbing import atomic_write
from tinyinvo.train.metrics import write_metrics
from tinyinvo.train.plots import plot_curves

CONFIG_NAME = "config.json"


def write_config(record, directory):
    """Write a run's record (``tinyinvo.train.resume.run_record``) as readable JSON."""
    path = os.path.join(directory, CONFIG_NAME)
    atomic_write(path, lambda file: file.write(json.dumps(record, indent=2) + "\n"), binary=False)
    return path


def write_epoch_outputs(history, record, directory):
    """metrics.csv, metrics.jsonl and curves.png of the finished epochs in ``history``."""
    write_metrics(history, directory)
    plot_curves(history, os.path.join(directory, "curves.png"), title=curves_title(record))


def curves_title(record):
    """E.g. "rednet26 width 16 on shapes (10000 train images): 15 epochs, batch 128, lr 0.1, ..."."""
    model, data, train = record["model"] or {}, record["data"], record["train"]
    name = model.get("name") or (f"{model['block']}-{model['op']}-{model['depth']}" if model
                                 else "model")
    recipe = (f"{train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']:g}, "
              f"momentum {train['momentum']:g}{' nesterov' if train['nesterov'] else ''}, "
              f"wd {train['weight_decay']:g}, warm-up {train['warmup_epochs']:g}, "
              f"smoothing {train['label_smoothing']:g}, {'augmented' if train['augment'] else 'no augmentation'}, "
              f"seed {train['seed']}")
    return (f"{name} width {model.get('width')} on {data['name']} ({data['n_train']} train images)"
            f"\n{recipe}")
