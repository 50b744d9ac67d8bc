"""Figures (type allow-list by bytes, metadata, counts required) and models (static scan)."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from hdh.disclosure import (
    CheckConfig,
    CheckError,
    CheckInput,
    FileReport,
    check_files,
    strip_metadata,
)


def _png(path: Path, text: dict[str, str] | None = None) -> Path:
    img = Image.new("RGB", (32, 16), (200, 10, 10))
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    img.save(path, format="PNG", pnginfo=info)
    return path


def _jpeg_with_exif(path: Path) -> Path:
    img = Image.new("RGB", (32, 16), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010E] = "patient 1850775123456"  # ImageDescription
    img.save(path, format="JPEG", exif=exif.tobytes())
    return path


def _one(
    path: Path, name: str, *extra: CheckInput, config: CheckConfig | None = None
) -> FileReport:
    return check_files([CheckInput(path, name, "output"), *extra], config=config)[0]


def _counts(tmp_path: Path) -> CheckInput:
    p = tmp_path / "counts.csv"
    p.write_text("group,count\nA,40\nB,55\n")
    return CheckInput(p, "counts.csv", "supporting")


def test_clean_png_with_its_counts_passes(tmp_path: Path) -> None:
    r = _one(_png(tmp_path / "f.png"), "f.png", _counts(tmp_path))
    assert (r.kind, r.status, r.flags) == ("figure", "pass", [])


def test_figure_without_counts_needs_review(tmp_path: Path) -> None:
    r = _one(_png(tmp_path / "f.png"), "f.png")
    assert r.status == "review" and [f.rule for f in r.flags] == ["figure-needs-counts"]


def test_png_text_chunk_is_metadata_and_strip_removes_it(tmp_path: Path) -> None:
    src = _png(tmp_path / "f.png", {"Comment": "BEN_NIR_PSA=deadbeef"})
    r = _one(src, "f.png", _counts(tmp_path))
    assert [f.rule for f in r.flags] == ["figure-metadata"] and r.status == "review"
    removed = strip_metadata(src, tmp_path / "clean.png")
    assert removed == ["Comment"]
    assert b"deadbeef" not in (tmp_path / "clean.png").read_bytes()
    with Image.open(src) as a, Image.open(tmp_path / "clean.png") as b:
        assert a.tobytes() == b.tobytes()  # same pixels
    assert _one(tmp_path / "clean.png", "clean.png", _counts(tmp_path)).status == "pass"


def test_jpeg_exif_is_found_and_stripped(tmp_path: Path) -> None:
    src = _jpeg_with_exif(tmp_path / "f.jpg")
    r = _one(src, "f.jpg", _counts(tmp_path))
    assert r.flags[0].rule == "figure-metadata" and "exif" in r.flags[0].location["metadata"]
    assert "exif" in strip_metadata(src, tmp_path / "c.jpg")
    assert b"1850775123456" not in (tmp_path / "c.jpg").read_bytes()
    assert _one(tmp_path / "c.jpg", "c.jpg", _counts(tmp_path)).status == "pass"


def test_data_appended_after_the_image_is_found(tmp_path: Path) -> None:
    src = _png(tmp_path / "f.png")
    with open(src, "ab") as f:
        f.write(b"hidden,rows\n1,2\n")
    r = _one(src, "f.png", _counts(tmp_path))
    assert r.flags[0].rule == "figure-metadata"
    strip_metadata(src, tmp_path / "c.png")
    assert b"hidden" not in (tmp_path / "c.png").read_bytes()


@pytest.mark.parametrize(
    "name,content",
    [
        ("f.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("f.pdf", b"%PDF-1.4\n"),
        ("f.gif", b"GIF89a\x01\x00\x01\x00"),
    ],
)
def test_blocked_figure_types_fail(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    r = _one(tmp_path / name, name, _counts(tmp_path))
    assert r.status == "fail" and [f.rule for f in r.flags] == ["file-type"]


def test_type_is_read_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    png = _png(tmp_path / "f.png")
    disguised = tmp_path / "f.jpg"
    disguised.write_bytes(png.read_bytes())
    assert _one(disguised, "f.jpg").flags[0].rule == "file-type"
    fake = tmp_path / "g.png"
    fake.write_bytes(b"a,b\n1,2\n")
    assert _one(fake, "g.png").flags[0].rule == "file-type"
    with pytest.raises(CheckError, match="not an allowed figure"):
        strip_metadata(fake, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_pixel_bomb_is_refused(tmp_path: Path) -> None:
    src = _png(tmp_path / "f.png")
    r = _one(src, "f.png", _counts(tmp_path), config=CheckConfig(max_figure_pixels=100))
    assert r.status == "fail" and r.flags[0].rule == "unreadable"


def test_truncated_png_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    src = _png(tmp_path / "f.png")
    src.write_bytes(src.read_bytes()[:60])
    assert _one(src, "f.png", _counts(tmp_path)).status == "fail"


# ------------------------------------------------------------------------- models


def fake_pickle(module: str, name: str) -> bytes:
    """A protocol-4 pickle calling module.name() (written by hand: sklearn is not installed)."""

    def u(s: str) -> bytes:
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b + b"\x94"

    body = u(module) + u(name) + b"\x93\x94)R\x94."
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body


def _model(tmp_path: Path, name: str, data: bytes, *extra: CheckInput) -> FileReport:
    (tmp_path / name).write_bytes(data)
    return _one(tmp_path / name, name, *extra)


SACROML = Path(__file__).parent / "fixtures" / "sacroml"


def _report(tmp_path: Path, auc: float, tpr: float, name: str = "model_attack.json") -> CheckInput:
    """A SACRO-ML report.json of one worst-case attack (sacroml 2's layout, as in the real
    reports of ``fixtures/sacroml``), with the given metrics in its repetitions."""
    doc = json.loads((SACROML / "logistic_regression.json").read_text())
    uid, entry = next((k, v) for k, v in doc.items() if "WorstCase" in v["metadata"]["attack_name"])
    for instance in entry["attack_experiment_logger"]["attack_instance_logger"].values():
        instance["AUC"], instance["TPR@0.1%"] = auc, tpr
    (tmp_path / name).write_text(json.dumps({uid: entry}))
    return CheckInput(tmp_path / name, name, "supporting")


def _real(name: str) -> CheckInput:
    return CheckInput(SACROML / name, "model_attack.json", "supporting")


def test_a_real_sacroml_report_of_an_overfitted_forest_fails_the_model(tmp_path: Path) -> None:
    data = fake_pickle("sklearn.ensemble._forest", "RandomForestClassifier")
    r = _model(tmp_path, "model.pkl", data, _real("leaky_random_forest.json"))
    assert r.status == "fail", r.flags
    messages = [f.message for f in r.flags if f.rule == "model-risk"]
    assert any("WorstCase" in m and "AUC 0.726" in m for m in messages), messages  # worst rep
    assert any("LiRA" in m and "AUC 0.861" in m for m in messages), messages


def test_a_real_sacroml_report_of_a_logistic_regression_passes(tmp_path: Path) -> None:
    data = fake_pickle("sklearn.linear_model._logistic", "LogisticRegression")
    r = _model(tmp_path, "model.pkl", data, _real("logistic_regression.json"))
    assert r.status == "pass", r.flags


def test_an_attack_sacroml_finds_significant_goes_to_review(tmp_path: Path) -> None:
    doc = json.loads((SACROML / "logistic_regression.json").read_text())
    for entry in doc.values():
        entry["metadata"]["global_metrics"]["AUC_sig"] = "Significant at p=0.05"
    (tmp_path / "model_attack.json").write_text(json.dumps(doc))
    data = fake_pickle("sklearn.linear_model._logistic", "LogisticRegression")
    r = _model(
        tmp_path,
        "model.pkl",
        data,
        CheckInput(tmp_path / "model_attack.json", "model_attack.json", "supporting"),
    )
    assert r.status == "review" and {f.rule for f in r.flags} == {"model-risk"}
    assert "significantly above chance" in r.flags[0].message


def test_knn_pickle_is_instance_based(tmp_path: Path) -> None:
    r = _model(
        tmp_path,
        "model.pkl",
        fake_pickle("sklearn.neighbors._classification", "KNeighborsClassifier"),
        _report(tmp_path, 0.5, 0.01),
    )
    assert r.kind == "model" and r.status == "fail"
    assert [f.rule for f in r.flags] == ["instance-based-model"]


def test_joblib_compressed_svm_is_found(tmp_path: Path) -> None:
    data = zlib.compress(fake_pickle("sklearn.svm._classes", "SVC"))
    r = _model(tmp_path, "model.joblib", data)
    assert {f.rule for f in r.flags} == {"instance-based-model", "model-risk"}


def test_safe_model_with_low_risk_report_passes(tmp_path: Path) -> None:
    data = fake_pickle("sklearn.linear_model._logistic", "LogisticRegression")
    assert _model(tmp_path, "model.pkl", data, _report(tmp_path, 0.52, 0.02)).status == "pass"
    r = _model(tmp_path, "model.pkl", data)
    assert r.status == "review" and [f.rule for f in r.flags] == ["model-risk"]


def test_high_membership_inference_risk_fails(tmp_path: Path) -> None:
    data = fake_pickle("sklearn.ensemble._forest", "RandomForestClassifier")
    r = _model(tmp_path, "model.pkl", data, _report(tmp_path, 0.81, 0.3))
    assert r.status == "fail" and [f.rule for f in r.flags] == ["model-risk", "model-risk"]


def test_malicious_pickle_is_flagged_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    r = _model(tmp_path, "model.pkl", data, _report(tmp_path, 0.5, 0.0))
    assert r.status == "fail" and [f.rule for f in r.flags] == ["unsafe-pickle"]
    assert "os.system" in r.flags[0].message
    assert not marker.exists()


def test_skops_schema_is_scanned(tmp_path: Path) -> None:
    schema = {
        "__class__": "Pipeline",
        "__module__": "sklearn.pipeline",
        "content": {
            "steps": [
                {
                    "__class__": "GaussianProcessRegressor",
                    "__module__": "sklearn.gaussian_process._gpr",
                }
            ]
        },
    }
    p = tmp_path / "m.skops"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
    r = _one(p, "m.skops")
    assert "instance-based-model" in {f.rule for f in r.flags}


def test_garbage_model_is_unreadable(tmp_path: Path) -> None:
    r = _model(tmp_path, "model.pkl", b"\xff\xfe not a pickle")
    assert r.status == "fail" and r.flags[0].rule == "unreadable"


def test_palette_png_keeps_its_transparency_when_stripped(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone")
    img.save(tmp_path / "p.png", transparency=0, pnginfo=info)
    assert strip_metadata(tmp_path / "p.png", tmp_path / "c.png") == ["Author"]
    with Image.open(tmp_path / "c.png") as c:
        assert c.info.get("transparency") == 0 and c.tobytes() == img.tobytes()
