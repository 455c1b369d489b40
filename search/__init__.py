"""drill-search: automated drill-down for tiny MNIST CNNs with Optuna."""

__version__ = "0.1.0"
