"""Pictures of a classifier's predictions: ROC curve, precision-recall curve and confusion matrix."""

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

from pima_lightning.runs.atomic import atomic_path

TITLE_CHARS = 40  # characters a title line holds in a 5-inch figure at matplotlib's suptitle size
TITLES = {
    "roc_curve": "ROC curve",
    "precision_recall_curve": "precision-recall curve",
    "confusion_matrix": "confusion matrix (threshold 0.5)",
}


LONGEST_CLASS_NAME = 16  # characters of a class name that fit under a confusion matrix's column


def diagnostic_figures(
    labels: np.ndarray, probabilities: np.ndarray, title: str, class_names: Sequence[str] = ("0", "1")
) -> dict[str, Figure]:
    """One figure per entry of TITLES; predicted class = probability > 0.5, as the accuracy metric counts;
    the confusion matrix names the classes ``class_names``."""
    # matplotlib's object API, not pyplot: no global figure state, no GUI backend needed
    figures = {name: Figure(figsize=(5, 4.5), layout="constrained") for name in TITLES}
    RocCurveDisplay.from_predictions(
        labels, probabilities, ax=figures["roc_curve"].add_subplot(), name="model", plot_chance_level=True
    )
    PrecisionRecallDisplay.from_predictions(
        labels,
        probabilities,
        ax=figures["precision_recall_curve"].add_subplot(),
        name="model",
        plot_chance_level=True,
    )
    ConfusionMatrixDisplay.from_predictions(
        labels,
        (probabilities > 0.5).astype(int),
        labels=[0, 1],
        display_labels=list(class_names),
        ax=figures["confusion_matrix"].add_subplot(),
        colorbar=False,
        # names longer than Pima's ("no diabetes (0)") would run into each other side by side
        xticks_rotation=20 if max(map(len, class_names)) > LONGEST_CLASS_NAME else "horizontal",
    )
    for name, figure in figures.items():
        # what is plotted, then which rows, each on its own line(s): one line of both did not fit 5 inches
        figure.suptitle("\n".join([TITLES[name], *textwrap.wrap(title, TITLE_CHARS)]))
    return figures


def save_figures(figures: dict[str, Figure], directory: Path) -> list[Path]:
    """Write each figure as ``<name>.png``, atomically; return the paths."""
    paths = []
    for name, figure in figures.items():
        path = directory / f"{name}.png"
        with atomic_path(path) as partial:
            figure.savefig(partial, format="png", dpi=100)
        paths.append(path)
    return paths
