"""The regions of an image and the image with regions erased: the image domain of the explainers.

As :mod:`._features` owns the text domain (words), this module owns images
(like lime's ``lime_image`` segmentation and shap's ``Image`` masker): every
model of a comparison is explained over the same regions, whatever its input
size or preprocessing, so attributions are comparable region by region.

* **Regions**: a fixed grid of :data:`GRID` x :data:`GRID` rectangular patches
  (fewer where the image has fewer pixels), edges at ``round(i * H / GRID)``:
  4 x 4 pixels each on a 28 x 28 image. A grid (not superpixels) keeps the
  regions of two images of one size identical, and gives SHAP a quadtree.
* **Erasing**: an erased region takes the image's mean colour (per channel,
  rounded to uint8), one colour for the whole image, so an erased patch keeps
  no trace of its content (lime's ``LimeImageExplainer`` fills each superpixel
  with its own mean colour, which keeps it; shap's ``Image`` masker blurs or
  in-paints). On a dark background the fill is lighter, so erasing a background
  region changes the image too, and it may get attribution (the report's
  heatmaps show where a model looks).
* **Quadtree** (:func:`._hierarchy.region_linkage`): the grid is split in halves by rows,
  each half in halves by columns, and so on (two binary levels make one
  quadtree level; the larger half first where a side is odd), as a SciPy
  linkage for SHAP's Owen values (:mod:`._shap`). On a 7 x 7 grid the exact
  Owen values cost 1,804 model evaluations (:func:`._hierarchy.linkage_cost`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["GRID", "Region", "image_regions", "erase"]

#: Regions per side of the grid (``GRID * GRID`` regions per image; fewer on an image of fewer pixels per side).
GRID = 7


@dataclass(frozen=True)
class Region:
    """One rectangular region of an image.

    Attributes
    ----------
    index : int
        0-based, row-major over the grid.
    row, col : int
        Top-left pixel (0-based).
    height, width : int
        Size in pixels (>= 1).
    """

    index: int
    row: int
    col: int
    height: int
    width: int

    def record(self) -> dict:
        """The region's keys in ``explanations.jsonl``."""
        return {"region": self.index, "row": self.row, "col": self.col, "height": self.height, "width": self.width}


def _edges(size: int, parts: int) -> np.ndarray:
    return np.round(np.linspace(0, size, parts + 1)).astype(int)


def image_regions(image: np.ndarray, grid: int = GRID) -> list[Region]:
    """The grid regions of ``image`` (H, W, C), row-major: ``min(grid, H)`` rows by ``min(grid, W)`` columns.

    Raises
    ------
    ValueError
        ``image`` is not 3-dimensional or has no pixels.
    """
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an image of shape (H, W, C), got {image.shape}")
    rows, cols = _edges(image.shape[0], min(grid, image.shape[0])), _edges(image.shape[1], min(grid, image.shape[1]))
    return [Region(i * (len(cols) - 1) + j, int(rows[i]), int(cols[j]), int(rows[i + 1] - rows[i]),
                   int(cols[j + 1] - cols[j]))
            for i in range(len(rows) - 1) for j in range(len(cols) - 1)]


def erase(image: np.ndarray, regions: Sequence[Region], keep: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) uint8 with the regions where ``keep`` (d,) is False set to its mean colour; a copy.
    ``keep`` of shape (m, d): the m images, shape (m, H, W, C)."""
    keep = np.asarray(keep, dtype=bool)
    owner = np.zeros(image.shape[:2], dtype=np.int64)  # the region of each pixel
    for region in regions:
        owner[region.row:region.row + region.height, region.col:region.col + region.width] = region.index
    fill = np.round(image.reshape(-1, image.shape[2]).mean(axis=0)).astype(image.dtype)
    return np.where(keep[..., owner][..., None], image, fill)


