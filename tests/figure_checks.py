"""Do the texts of a matplotlib figure print over each other? (importable as ``figure_checks``)"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

# Boxes include the font's ascent and descent, so matplotlib's own layout lets an axis label's
# box touch its tick labels' by a fraction of a pixel: only a larger intersection is a clash.
OVERLAP_PX = 1.0


def overlapping_labels(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts (titles, axis and tick labels, legends, notes) whose boxes intersect.

    Draws the figure once at its own dpi: ``savefig`` at another dpi leaves some positions
    (a legend's) computed for that one.
    """
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in _drawn_texts(figure)]
    return [
        (first, second)
        for i, (first, box) in enumerate(boxes)
        for second, other in boxes[i + 1 :]
        if _intersect(box, other)
    ]


def _intersect(box: Bbox, other: Bbox) -> bool:
    common = Bbox.intersection(box, other)
    return common is not None and min(common.width, common.height) > OVERLAP_PX


def _drawn_texts(figure: Figure) -> list[Text]:
    """Visible, non-empty texts; tick labels only of the ticks inside their axis' view."""
    ticks, shown = set(), set()
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = {tick.label1, tick.label2}
                ticks |= labels
                if low <= tick.get_loc() <= high:
                    shown |= labels
    return [
        text
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text().strip() and (text not in ticks or text in shown)
    ]
