"""Pictures of a classifier's predictions: ROC curve, precision-recall curve and confusion matrix."""

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay
from torch.utils.tensorboard import SummaryWriter

from pima_lightning.runs.atomic import atomic_path

TITLE_CHARS = 40  # characters a title line holds in a 5-inch figure at matplotlib's suptitle size
TITLES = {
    "roc_curve": "ROC curve",
    "precision_recall_curve": "precision-recall curve",
    "confusion_matrix": "confusion matrix (threshold 0.5)",
}


CLASS_NAMES_CHARS = 32  # characters of class names that fit side by side under a confusion matrix


def diagnostic_figures(
    labels: np.ndarray, probabilities: np.ndarray, title: str, class_names: Sequence[str] = ("0", "1")
) -> dict[str, Figure]:
    """One figure per entry of TITLES; predicted class = probability > 0.5, as the accuracy metric counts;
    the confusion matrix names the classes ``class_names``. For K > 2 classes (``probabilities`` of shape
    ``(rows, K)``): a one-vs-rest curve per class, and the likeliest class in a K x K confusion matrix."""
    # matplotlib's object API, not pyplot: no global figure state, no GUI backend needed
    figures = {name: Figure(figsize=(5, 4.5), layout="constrained") for name in TITLES}
    labels = np.asarray(labels).astype(int)
    if probabilities.ndim == 1:
        curves = [("model", labels, probabilities)]
        predicted = (probabilities > 0.5).astype(int)
    else:  # one class against the rest, each
        curves = [(name, labels == k, probabilities[:, k]) for k, name in enumerate(class_names)]
        predicted = probabilities.argmax(1)
    roc, precision_recall = (
        figures["roc_curve"].add_subplot(),
        figures["precision_recall_curve"].add_subplot(),
    )
    for number, (name, truth, scores) in enumerate(curves):
        last = number == len(curves) - 1  # ROC's chance line once, after the curves
        RocCurveDisplay.from_predictions(truth, scores, ax=roc, name=name, plot_chance_level=last)
        PrecisionRecallDisplay.from_predictions(  # its chance level is a class's share: one class only
            truth, scores, ax=precision_recall, name=name, plot_chance_level=len(curves) == 1
        )
    ConfusionMatrixDisplay.from_predictions(
        labels,
        predicted,
        labels=list(range(len(class_names))),
        display_labels=list(class_names),
        ax=figures["confusion_matrix"].add_subplot(),
        colorbar=False,
        # names longer than Pima's ("no diabetes (0)", "diabetes (1)") would run into each other
        xticks_rotation=20 if sum(map(len, class_names)) > CLASS_NAMES_CHARS else "horizontal",
    )
    titles = TITLES | (
        {} if probabilities.ndim == 1 else {"confusion_matrix": "confusion matrix (likeliest class)"}
    )
    for name, figure in figures.items():
        # what is plotted, then which rows, each on its own line(s): one line of both did not fit 5 inches
        figure.suptitle("\n".join([titles[name], *textwrap.wrap(title, TITLE_CHARS)]))
    return figures


def save_figures(figures: dict[str, Figure], directory: Path) -> dict[str, Path]:
    """Write each figure as ``<name>.png``, atomically; return the paths by name."""
    paths = {}
    for name, figure in figures.items():
        path = directory / f"{name}.png"
        with atomic_path(path) as partial:
            figure.savefig(partial, format="png", dpi=100)
        paths[name] = path
    return paths


def add_pictures(
    writer: SummaryWriter, pictures: dict[str, Path], prefix: str, step: int | None = None
) -> None:
    """Show saved PNGs in TensorBoard's Images tab as ``<prefix>/<name>``: the pixels of the files, not
    the figures drawn again (``add_figure`` draws a figure anew, which took 0.3 s of the default run for
    the three pictures)."""
    for name, path in pictures.items():
        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        writer.add_image(f"{prefix}/{name}", pixels, global_step=step, dataformats="HWC")
