"""Evaluation of classifiers: accuracy, per-class accuracy, confusion matrix."""
