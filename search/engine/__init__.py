"""The engine: MNIST tensors, the network and the training loop. Knows nothing of Optuna."""
