import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pima_lightning.runs.plots import TITLES, diagnostic_figures

LONGEST_TITLES = ["254 rows (held out, data.split=random)", "768 rows (every row)", "254 held-out rows"]


@pytest.mark.parametrize("title", LONGEST_TITLES)
def test_every_title_line_fits_inside_its_picture(title):
    """Measured as matplotlib draws them: each line of every figure's title lies within the figure."""
    labels = np.array([0, 1, 0, 1, 1, 0])
    figures = diagnostic_figures(labels, np.array([0.1, 0.8, 0.4, 0.6, 0.3, 0.2]), title)
    for name, figure in figures.items():
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        (suptitle,) = [text for text in figure.texts if text.get_text().startswith(TITLES[name])]
        assert title.split()[0] in suptitle.get_text()  # the rows are named too
        extent, inside = suptitle.get_window_extent(renderer), figure.bbox
        assert inside.x0 <= extent.x0 and extent.x1 <= inside.x1, f"{name}: {suptitle.get_text()!r} is cut"
        assert extent.y1 <= inside.y1
