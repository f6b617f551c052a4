"""$readmemh memory images: read back with an independent parser and compare to the arrays."""

import json

import numpy as np
import pytest

from bp_hw.errors import BpHwError
from bp_hw.fixed import QFormat, QuantConfig, quantize_model
from bp_hw.fixed.export import INDEX_NAME, export_hex, hex_image, read_hex_image
from bp_hw.modelfile import FloatModel


def model_with(acts, sizes=(3, 5, 4, 2), seed=0):
    rng = np.random.default_rng(seed)
    sizes = list(sizes)
    return FloatModel(layers=sizes, weights=[rng.normal(0, 2, (n, m)) for m, n in zip(sizes, sizes[1:])],
                      biases=[rng.normal(0, 1, n) for n in sizes[1:]], activations=acts, loss="mse",
                      norm_mean=np.zeros(sizes[0]), norm_std=np.ones(sizes[0]), n_classes=sizes[-1])


def parse_readmemh(path, width):
    """Words as $readmemh sees them, then two's complement of ``width`` bits, written out by hand."""
    out = []
    for line in path.read_text().splitlines():
        assert line == line.strip() and line, "one bare word per line"
        assert len(line) == (width + 3) // 4
        v = int(line, 16)
        assert 0 <= v < 2 ** width
        out.append(v - 2 ** width if v >= 2 ** (width - 1) else v)
    return out


@pytest.mark.parametrize("kw", [dict(format="Q4.12"), dict(format="Q2.6", lut_symmetric=True),
                                dict(format="Q3.9", lut_bits=7, lut_interpolate=True, lut_symmetric=True),
                                dict(format="Q5.15", weight_format="Q2.6", bias_format="Q9.3")])
def test_images_read_back_equal_the_arrays(tmp_path, kw):
    fm = model_with(["tanh", "sigmoid", "identity"])
    q, _ = quantize_model(fm, QuantConfig(**kw))
    index = export_hex(q, tmp_path)
    assert json.loads((tmp_path / INDEX_NAME).read_text()) == json.loads(json.dumps(index))
    by_name = {f["file"]: f for f in index["files"]}
    for l, layer in enumerate(q.layers):
        w = by_name[f"layer{l}_weights.hex"]
        assert (w["width"], w["depth"], w["format"]) == (layer.weight_fmt.width, layer.macs, layer.weight_fmt.name)
        words = parse_readmemh(tmp_path / w["file"], w["width"])
        # Documented order: address i * fan_in + j holds W[i, j].
        for i in range(layer.fan_out):
            for j in range(layer.fan_in):
                assert words[i * layer.fan_in + j] == layer.weights[i, j]
        b = by_name[f"layer{l}_biases.hex"]
        assert parse_readmemh(tmp_path / b["file"], layer.bias_fmt.width) == layer.biases.tolist()
        assert b["bias_shift"] == layer.bias_shift
        if layer.lut is None:
            assert f"layer{l}_lut.hex" not in by_name
            continue
        t = by_name[f"layer{l}_lut.hex"]
        # the image is what the hardware ROM holds: the stored table, or all of it when interpolating
        rom = layer.lut.full_table() if layer.lut.interpolate else layer.lut.table
        assert t["depth"] == rom.size and t["width"] == layer.out_fmt.width
        assert parse_readmemh(tmp_path / t["file"], t["width"]) == rom.tolist()
        assert np.array_equal(read_hex_image(tmp_path / t["file"], layer.out_fmt), rom)


def test_hex_image_refuses_values_outside_the_format():
    with pytest.raises(BpHwError):
        hex_image([128], QFormat(2, 6))
    assert hex_image([-1, 0, 127, -128], QFormat(2, 6)) == "ff\n00\n7f\n80\n"
    assert hex_image([-1], QFormat(3, 2)) == "1f\n"  # 5 bits: two digits, top bits zero


def test_export_into_a_file_path_fails(tmp_path):
    q, _ = quantize_model(model_with(["relu", "relu", "identity"]), QuantConfig())
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(BpHwError):
        export_hex(q, f)
