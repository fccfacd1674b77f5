"""Training: SGD with momentum, a warm-up + cosine schedule, the training loop, checkpoints that
resume bit for bit, metric logs and learning curves. One idea per module: config (TrainConfig,
seeds), flags (the recipe's command-line flags), optim, schedule, trainer (the loop), evaluate,
resume (checkpoint <-> Trainer), checkpoint (the file), metrics, plots and records (a run's
files). The ``train`` and ``eval`` commands are in ``tinyinvo.train.cli``.

    from tinyinvo.train import Trainer, TrainConfig, evaluate
    trainer = Trainer(model, data, TrainConfig(epochs=5), out_dir="runs/demo")
    history = trainer.fit()
"""

from tinyinvo.train.checkpoint import load_checkpoint, save_checkpoint
from tinyinvo.train.config import TrainConfig, make_rng
from tinyinvo.train.evaluate import evaluate
from tinyinvo.train.metrics import read_metrics, write_metrics
from tinyinvo.train.optim import SGD
from tinyinvo.train.plots import plot_curves
from tinyinvo.train.schedule import WarmupCosine
from tinyinvo.train.trainer import Trainer

__all__ = ["SGD", "WarmupCosine", "Trainer", "TrainConfig", "evaluate", "make_rng",
           "save_checkpoint", "load_checkpoint", "write_metrics", "read_metrics", "plot_curves"]
