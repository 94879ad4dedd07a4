"""Segmentation runtime (ONNX Runtime, manifest-driven resize/tile) and the colour method.

Situation: a camera 25 m up looks seaward over a planar beach (tan(beta) = 0.08) rendered
by :mod:`export.data.scene`, 480 x 384 pixels, water level 0.3 m. Its labels are the truth.

The runtime is exercised on a real ONNX export of a tiny per-pixel network (two 1x1
convolutions) trained here for a few hundred steps on the rendered colours: being
per-pixel, its output on a tile must equal its output on the whole image, which makes
the tiling exactly checkable. The shipped U-Net is checked too when it is built.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.beach.waterline.colour import colour_water_probability, otsu_threshold, red_minus_blue
from edge.beach.waterline.segmentation import WaterSegmenter
from edge.config.beach import SegmentationSection
from edge.errors import InputError, ModelError
from edge.models.manifest import Manifest, OutputSpec, ResizePolicy, load_manifest, manifest_path
from edge.models.runtime import MODELS_DIR
from export.data.scene import SKY, BeachProfile, BeachScene, look_at_camera


@pytest.fixture(scope="module")
def render():
    cam = look_at_camera((5.0, -60.0, 25.0), (0.0, 120.0, 0.0), nu=480, nv=384, hfov_deg=60)
    scene = BeachScene(cam, BeachProfile(z_origin=1.0, slope=0.08), seaward_azimuth_deg=0.0)
    return scene.render(water_level=0.3)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _manifest(resize: ResizePolicy) -> Manifest:
    return Manifest(
        name="pixelnet",
        task="segmentation",
        input_name="image",
        input_shape=[None, 3, 64, 80],
        outputs=[OutputSpec("water_logits", "N x 1 x H x W water logits")],
        classes=["water"],
        channel_order="RGB",
        resize=resize,
        training_data="one rendered beach scene (export.data.scene), 300 Adam steps",
    )


@pytest.fixture(scope="module")
def tiny_models(render, tmp_path_factory):
    """The trained net exported twice: a whole-image ``resize`` model and a ``tile`` model.
    (PyTorch only here: the device's suite runs these tests' neighbours without it.)"""
    import torch

    from export.convert.onnx_export import export_onnx

    # Water logit of each pixel from its own colour: two 1x1 convolutions.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1))
    manifest = _manifest(ResizePolicy())
    ground = render.labels != SKY
    rgb = render.image[..., ::-1][ground].astype(np.float32)
    x = manifest.normalisation.apply(rgb.T[:, :, None])[:, :, 0].T  # (pixels, 3)
    y = (render.labels[ground] == 2).astype(np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(x))[:, :, None, None]
    yt = torch.from_numpy(y)[:, None, None, None]
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        idx = torch.randint(0, len(xt), (2048,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    root = tmp_path_factory.mktemp("seg-models")
    paths = {}
    for mode, policy in (
        ("resize", ResizePolicy()),
        ("tile", ResizePolicy(mode="tile", tile=[64, 80], overlap=16)),
    ):
        paths[mode] = root / mode / "unet.onnx"
        export_onnx(net.eval(), paths[mode], _manifest(policy), dynamo=False)
    return net, paths


def _segmenter(path, **keys) -> WaterSegmenter:
    section = SegmentationSection(
        model=str(path), precision="fp32", providers=["CPUExecutionProvider"], **keys
    )
    return WaterSegmenter(section)


def test_resized_model_gives_probability_and_mask_at_image_resolution(tiny_models, render):
    # The 480 x 384 image is shrunk to the 80 x 64 model input and the probability scaled
    # back: the mask must match the rendered water within the ground (IoU >= 0.95; the
    # 6x resize blurs the shoreline by a few pixels, well under 5 % of the water area).
    _, paths = tiny_models
    seg = _segmenter(paths["resize"])(render.image)
    assert seg.method == "unet" and seg.model == "unet.onnx"
    assert seg.probability.shape == seg.mask.shape == (384, 480)
    assert seg.probability.dtype == np.float32
    assert seg.probability.min() >= 0.0 and seg.probability.max() <= 1.0
    ground = render.labels != SKY
    assert _iou(seg.mask & ground, render.water_mask) >= 0.95


def test_the_guided_refinement_follows_the_rendered_shoreline(tiny_models, render):
    """The 6x-resized map refined at full resolution (the default) fits the rendered water at
    least as well as the plain resize; ``refine = "none"`` gives the plain resize. The
    model's own map, unrefined, is kept beside it: transect confidence is read from it."""
    _, paths = tiny_models
    guided = _segmenter(paths["resize"])(render.image)
    plain = _segmenter(paths["resize"], refine="none")(render.image)
    assert not np.array_equal(guided.probability, plain.probability)
    assert guided.model_probability is not None
    np.testing.assert_array_equal(guided.model_probability, plain.probability)
    np.testing.assert_array_equal(guided.confidence_probability, plain.probability)
    ground = render.labels != SKY
    iou_guided = _iou(guided.mask & ground, render.water_mask)
    iou_plain = _iou(plain.mask & ground, render.water_mask)
    assert iou_guided >= iou_plain - 0.002, (iou_guided, iou_plain)


def test_the_flip_average_is_the_mean_of_both_views_and_mirror_consistent(tiny_models, render):
    """``flip_average`` (the default): the mean of the image's map and the mirrored image's
    map mirrored back, so segmenting the mirrored image gives the mirrored result."""
    _, paths = tiny_models
    plain = _segmenter(paths["resize"], flip_average=False, refine="none")
    averaged = _segmenter(paths["resize"], refine="none")
    image = render.image
    mirrored = np.ascontiguousarray(image[:, ::-1])
    want = 0.5 * (plain(image).probability + plain(mirrored).probability[:, ::-1])
    np.testing.assert_allclose(averaged(image).probability, want, atol=1e-6)
    np.testing.assert_allclose(
        averaged(mirrored).probability, averaged(image).probability[:, ::-1], atol=1e-6
    )


def test_tiles_cover_the_full_resolution_image_without_seams(tiny_models, render):
    # Tiles of 80 x 64 px overlapping by 16 px over 480 x 384 px: for a per-pixel network
    # the stitched probability must equal the network applied to the whole image at once
    # (1e-5: float32 rounding only), and the mask must match the truth almost exactly.
    import torch

    net, paths = tiny_models
    seg = _segmenter(paths["tile"])(render.image)
    manifest = load_manifest(paths["tile"])
    x = manifest.normalisation.apply(render.image[..., ::-1].transpose(2, 0, 1).copy())
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy(x)[None]))[0, 0].numpy()
    np.testing.assert_allclose(seg.probability, ref, atol=1e-5)
    ground = render.labels != SKY
    assert _iou(seg.mask & ground, render.water_mask) >= 0.99


def test_a_model_that_is_missing_or_altered_is_refused(tiny_models, tmp_path):
    """A missing file is refused when the config is validated (the load-time error names
    the key: tests/config); one that does not match its manifest when it is loaded."""
    with pytest.raises(ValidationError, match="file not found"):
        _segmenter(tmp_path / "nothing.onnx")
    _, paths = tiny_models
    bad = tmp_path / "unet.onnx"
    bad.write_bytes(paths["resize"].read_bytes()[:-1] + b"\x00")
    manifest_path(bad).write_text(manifest_path(paths["resize"]).read_text())
    with pytest.raises(ModelError) as err:
        _segmenter(bad)
    assert "does not match its manifest" in str(err.value) and "\n" not in str(err.value)


def test_colour_divergence_splits_water_from_sand_at_otsu(render):
    # Rendered colours (BGR): water (120, 100, 40) has R - B = -80, wet sand (105, 135,
    # 160) +55, dry sand (150, 190, 215) +65. Otsu over the ground splits water from sand,
    # and the threshold sits midway in the empty gap, at (-80 + 55) / 2 = -12.5, so the
    # logistic is decisive on both sides (water p > 0.99) and the 0.5 mask is the water.
    ground = render.labels != SKY
    rb = red_minus_blue(render.image)
    t = otsu_threshold(rb[ground])
    assert t == pytest.approx(-12.5)
    prob = colour_water_probability(render.image, ground)
    assert prob.shape == (384, 480)
    assert prob[render.water_mask].min() > 0.99
    assert _iou((prob >= 0.5) & ground, render.water_mask) == 1.0
    colour = WaterSegmenter(SegmentationSection(method="colour"))(render.image, ground)
    assert colour.method == "colour" and colour.model is None
    assert np.array_equal(colour.mask & ground, render.water_mask)


def test_colour_method_refuses_a_grey_image():
    with pytest.raises(InputError, match="3-channel"):
        red_minus_blue(np.zeros((10, 10), np.uint8))


def test_shipped_unet_through_the_runtime(tmp_path):
    # The shipped U-Net on fresh synthetic TimeX images of its own generator (a seed its
    # training did not use), at its input size 320 x 256: (1) the segmenter's probability
    # is exactly the sigmoid of the raw ONNX output on the manifest-normalised RGB input,
    # so channel order and normalisation are applied as the manifest says (1e-5); (2) the
    # water is found with mean IoU >= 0.8 over 6 images (the synthetic-only model reported
    # 0.94 on its held-out set; the real-data model gives 0.89 here, one scene 0.48;
    # single scenes vary, hence the mean). The plain look (no optional modes: the images
    # the shipped model trained on; the hard modes give 0.64 on this seed until retrained).
    if not (MODELS_DIR / "unet.onnx").is_file():
        pytest.skip("the shipped U-Net edge/models/unet.onnx is not built in this checkout")
    from export.data.synth_timex import PLAIN, generate

    segmenter = _segmenter(MODELS_DIR / "unet.onnx", flip_average=False)
    model = segmenter.model
    h, w = model.input_size
    rng = np.random.default_rng(20260615)
    ious = []
    for i in range(6):
        sample = generate(rng, (h, w), PLAIN)
        seg = segmenter(sample.image)
        assert seg.probability.shape == (h, w)
        if i == 0:
            x = model.manifest.normalisation.apply(sample.image[..., ::-1].transpose(2, 0, 1))
            logit = model.run(x[None])[0][0, 0]
            np.testing.assert_allclose(seg.probability, 1 / (1 + np.exp(-logit)), atol=1e-5)
        ious.append(_iou(seg.mask, sample.mask))
    print("shipped U-Net IoU on fresh synthetic TimeX:", np.round(ious, 3))
    assert np.mean(ious) >= 0.8
