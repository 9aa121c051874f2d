"""Explanations over image regions: the grid, erasing, the quadtree, exact Owen values against brute force, LIME."""

import itertools
import json

import numpy as np
import pytest

from trusteq.data import Example
from trusteq.explain import explain_examples, features, image_regions, linkage_cost, perturb, region_linkage


def _image(h, w, c=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, c)).astype(np.uint8)


def test_grid_regions_tile_the_image_row_major():
    regions = image_regions(_image(28, 28))
    assert len(regions) == 49 and {(r.height, r.width) for r in regions} == {(4, 4)}
    assert [(r.row, r.col) for r in regions[:8]] == [(0, c) for c in range(0, 28, 4)] + [(4, 0)]
    covered = np.zeros((28, 28), int)
    for r in image_regions(_image(30, 17)):  # uneven sides: every pixel in exactly one region
        covered[r.row:r.row + r.height, r.col:r.col + r.width] += 1
    assert covered[:28, :17].min() == 1 and len(image_regions(_image(3, 5))) == 15  # fewer pixels than the grid


def test_erasing_fills_the_images_mean_colour_and_keeps_the_rest():
    img = _image(14, 14, 3)
    ex = Example("0", "x#0", None, "a", image=img)
    feats = features(ex)
    keep = np.ones(len(feats), bool)
    keep[[0, 48]] = False
    [out] = perturb(ex, feats, keep[None])
    fill = np.round(img.reshape(-1, 3).mean(0)).astype(np.uint8)
    assert (out[:2, :2] == fill).all() and (out[12:, 12:] == fill).all()
    assert np.array_equal(out[2:12], img[2:12]) and np.array_equal(img, ex.image)  # a copy


def test_quadtree_halves_rows_then_columns():
    z = region_linkage(image_regions(_image(4, 4), grid=4))  # 16 regions
    assert z.shape == (15, 4) and z[-1, 3] == 16 and np.all(np.diff(z[:, 2]) >= 0)
    # the first merges join horizontal neighbours (columns split last): regions 0+1, 2+3, ...
    assert {tuple(sorted(row[:2].astype(int))) for row in z[:8]} == {(2 * i, 2 * i + 1) for i in range(8)}
    # the four quadrants appear as clusters of size 4: {0,1,4,5}, {2,3,6,7}, ...
    leaves = {i: {i} for i in range(16)}
    for i, row in enumerate(z):
        leaves[16 + i] = leaves[int(row[0])] | leaves[int(row[1])]
    quads = [s for s in leaves.values() if len(s) == 4]
    assert sorted(map(sorted, quads)) == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    assert linkage_cost(z) == 2 + 2 * sum(4 ** depth for depth in range(4))


def _hierarchical_orders(z, d):
    """All orders of the d players in which every cluster of the hierarchy ``z`` is contiguous."""
    clusters = {i: {i} for i in range(d)}
    for i, row in enumerate(z):
        clusters[d + i] = clusters[int(row[0])] | clusters[int(row[1])]
    inner = [c for c in clusters.values() if 1 < len(c) < d]
    for order in itertools.permutations(range(d)):
        pos = {p: k for k, p in enumerate(order)}
        if all(max(pos[p] for p in c) - min(pos[p] for p in c) == len(c) - 1 for c in inner):
            yield order


def test_exact_owen_values_of_regions_equal_brute_force():
    """Owen (1977): each player's value is its mean marginal contribution over the orders consistent with the
    coalition structure (every cluster contiguous); computed here by enumerating all 6! orders of a 2 x 3 grid."""
    img = _image(2, 3, seed=3)  # one pixel per region: 6 regions
    w = np.random.default_rng(4).normal(size=(2, 3))

    def model(x):
        x = np.asarray(x, float)[..., 0] / 255
        s = (x * w).sum(axis=(1, 2)) + 2.0 * x[:, 0, 0] * x[:, 1, 2] - 1.5 * x[:, 0, 1] * x[:, 1, 1]
        p = 1 / (1 + np.exp(-s))
        return np.stack([1 - p, p], axis=1)

    ex = Example("0", "x#0", None, "a", image=img)
    feats = features(ex)
    got = explain_examples({"m": model}, [ex], [1], explainer="shap", budget=10_000)["m"][0]
    value = lambda keep: model(np.stack(perturb(ex, feats, np.array([keep], bool))))[0, 1]  # noqa: E731
    brute, orders = np.zeros(6), list(_hierarchical_orders(region_linkage(feats), 6))
    for order in orders:
        keep = [False] * 6
        for p in order:
            before = value(keep)
            keep[p] = True
            brute[p] += value(keep) - before
    brute /= len(orders)
    assert len(orders) == 2 ** 5  # a binary hierarchy: each of 5 inner nodes orders its two children
    np.testing.assert_allclose(got.weights, brute, atol=1e-12)
    assert got.n_evals == linkage_cost(region_linkage(feats))


def test_lime_finds_the_region_a_model_reads():
    img = np.full((28, 28, 1), 30, np.uint8)
    img[8:12, 16:20] = 250  # region 2 * 7 + 4 = 18 is bright

    def model(x):
        x = np.stack(x).astype(float)
        p = 1 / (1 + np.exp(-(x[:, 8:12, 16:20, 0].mean(axis=(1, 2)) - 100) / 20))
        return np.stack([1 - p, p], axis=1)

    ex = Example("0", "x#0", None, "a", image=img)
    out = explain_examples({"m": model}, [ex], [1], explainer="lime", seed=1, budget=300)["m"][0]
    assert np.argmax(np.abs(out.weights)) == 18 and out.weights[18] > 0.5
    assert np.abs(np.delete(out.weights, 18)).max() < 0.05
    again = explain_examples({"m": model}, [ex], [1], explainer="lime", seed=1, budget=300)["m"][0]
    assert np.array_equal(out.weights, again.weights) and out.n_evals <= 300
    record = out.to_record(["no", "yes"])
    assert record["features"][18] == {"region": 18, "row": 8, "col": 16, "height": 4, "width": 4,
                                      "weight": pytest.approx(out.weights[18])}
    json.dumps(record)


def test_image_examples_are_keyed_by_their_pixels():
    a, b = _image(4, 4, seed=0), _image(4, 4, seed=1)
    ka, kb = Example("0", "x", None, "a", image=a).key, Example("0", "x", None, "a", image=b).key
    assert ka != kb and ka[0] == "image"
    assert Example("7", "elsewhere.gz#7", None, "a", image=a.copy()).key == ka  # where it was read is not content
    assert Example("0", "x", None, "a", image=a.astype(np.int8)).key != ka
    assert Example("0", "x", None, "a").key == ("x", None)  # texts keep their old cache keys
