"""Training: SGD with momentum, a warm-up + cosine schedule, the training loop, checkpoints that
resume bit for bit, metric logs and learning curves. The ``train`` and ``eval`` commands are in
``tinyinvo.train.cli``.

    from tinyinvo.train import Trainer, TrainConfig, evaluate
    trainer = Trainer(model, data, TrainConfig(epochs=5), out_dir="runs/demo")
    history = trainer.fit()
"""

from tinyinvo.train.checkpoint import load_checkpoint, save_checkpoint
from tinyinvo.train.metrics import read_metrics, write_metrics
from tinyinvo.train.optim import SGD
from tinyinvo.train.plots import plot_curves
from tinyinvo.train.schedule import WarmupCosine
from tinyinvo.train.trainer import TrainConfig, Trainer, evaluate, make_rng

__all__ = ["SGD", "WarmupCosine", "Trainer", "TrainConfig", "evaluate", "make_rng",
           "save_checkpoint", "load_checkpoint", "write_metrics", "read_metrics", "plot_curves"]
