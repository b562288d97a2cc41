"""The toolkit every model kind shares: one artifact format and error, atomic
writing, the strict environment reading of inference.runtime, and the out-of-scope
decision on constructed logits."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import artifact, runtime
from inference.artifact import ArtifactError
from inference.intents.predictor import decide

INFERENCE = Path(__file__).resolve().parents[2] / "inference"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _model_dir(path: Path) -> Path:
    path.mkdir()
    (path / "config.json").write_text('{"kind": "toy"}')
    (path / "weights").mkdir()
    (path / "weights" / "w.bin").write_bytes(b"\x00\x01\x02")
    return path


# Artifact


def test_checksums_are_written_in_the_one_format_and_verified(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    model_id = artifact.write_checksums(model)
    sums = json.loads((model / "checksums.json").read_text())
    assert sums["algorithm"] == "sha256" and set(sums["files"]) == {"config.json", "weights/w.bin"}
    assert artifact.verify(model) == model_id and len(model_id) == 12


def test_the_old_flat_reply_checksum_format_still_verifies_to_the_same_id(tmp_path: Path) -> None:
    model = _model_dir(tmp_path / "m")
    model_id = artifact.write_checksums(model)
    files = json.loads((model / "checksums.json").read_text())["files"]
    (model / "checksums.json").write_text(json.dumps(files))  # {"file": "sha"}
    assert artifact.read_checksums(model) == files
    assert artifact.verify(model) == model_id


@pytest.mark.parametrize("flat", [False, True])
def test_a_tampered_file_is_refused_with_the_one_artifact_error(tmp_path: Path, flat: bool) -> None:
    model = _model_dir(tmp_path / "m")
    artifact.write_checksums(model)
    if flat:
        files = json.loads((model / "checksums.json").read_text())["files"]
        (model / "checksums.json").write_text(json.dumps(files))
    (model / "weights" / "w.bin").write_bytes(b"\x00\x01\x03")
    with pytest.raises(ArtifactError, match="weights/w.bin does not match its checksum"):
        artifact.verify(model)


def test_missing_unlisted_and_unreadable_artifacts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        artifact.verify(tmp_path / "nothing")
    model = _model_dir(tmp_path / "m")
    with pytest.raises(ArtifactError, match="incomplete: checksums.json is missing"):
        artifact.verify(model)
    artifact.write_checksums(model)
    with pytest.raises(ArtifactError, match="incomplete: metrics.json is not listed"):
        artifact.verify(model, required=("config.json", "metrics.json"))
    (model / "weights" / "w.bin").unlink()
    with pytest.raises(ArtifactError, match="weights/w.bin is missing"):
        artifact.verify(model)
    (model / "checksums.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="checksums.json cannot be read"):
        artifact.verify(model)
    (model / "checksums.json").write_text('{"algorithm": "md5", "files": {}}')
    with pytest.raises(ArtifactError, match="unknown algorithm"):
        artifact.verify(model)


def test_a_failed_build_leaves_nothing_and_keeps_the_older_model(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        artifact.write_atomically(tmp_path / "new", build)
    assert list(tmp_path.iterdir()) == []

    old = _model_dir(tmp_path / "old")
    old_id = artifact.write_checksums(old)
    with pytest.raises(RuntimeError, match="disk full"):
        artifact.write_atomically(old, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert artifact.verify(old) == old_id


def test_a_finished_build_replaces_the_older_model_and_is_sealed(tmp_path: Path) -> None:
    old = _model_dir(tmp_path / "m")
    artifact.write_checksums(old)
    with artifact.atomic_directory(old) as tmp:
        (tmp / "config.json").write_text('{"kind": "new"}')
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert sorted(artifact.read_checksums(old)) == ["config.json"]
    artifact.verify(old)
    with pytest.raises(ArtifactError, match="not empty"), artifact.atomic_directory(old, overwrite=False):
        pass


def test_library_versions_names_python_and_each_module() -> None:
    versions = artifact.library_versions("torch", "numpy")
    assert set(versions) == {"python", "torch", "numpy"} and versions["torch"] == torch.__version__


# Runtime: every environment variable, read strictly in one place


@pytest.mark.parametrize(
    ("name", "read", "raw"),
    [
        ("INFERENCE_THREADS", runtime.env_threads, "four"),
        ("INFERENCE_THREADS", runtime.env_threads, "-2"),
        ("INFERENCE_THREADS", runtime.choose_threads, "2.5"),
        ("REPLY_THREADS", runtime.env_reply_threads, "many"),
        ("REPLY_THREADS", runtime.limit_threads, "-1"),
        ("REPLY_DEVICE", runtime.env_reply_device, "gpu"),
        ("REPLY_DEVICE", runtime.choose_reply_device, "cuda:x"),
    ],
)
def test_a_malformed_environment_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, read, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(runtime.EnvValueError, match=f"{name} must be .*, got '{raw}'"):
        read()


def test_well_formed_environment_values_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in runtime.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert runtime.env_threads() is None and runtime.env_reply_device() is None
    assert runtime.embed_cache_dir() == Path.home() / ".cache" / "chatbot" / "embeddings"
    monkeypatch.setenv("INFERENCE_THREADS", " 3 ")
    assert runtime.env_threads() == 3 and runtime.choose_threads() == 3 and runtime.choose_threads(2) == 2
    monkeypatch.setenv("INFERENCE_THREADS", "0")  # 0 is "choose for me", as in the Django settings
    assert runtime.env_threads() is None and runtime.choose_threads() >= 1
    monkeypatch.setenv("REPLY_THREADS", "")
    assert runtime.env_reply_threads() is None
    monkeypatch.setenv("REPLY_DEVICE", "cpu")
    assert runtime.choose_reply_device() == torch.device("cpu")
    monkeypatch.setenv("INTENT_EMBED_CACHE", str(tmp_path / "cache"))
    assert runtime.embed_cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("REPLY_BASE_MODEL", "/models/base")
    assert runtime.env_base_model("replies") == "/models/base" and runtime.env_base_model("intents") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without CUDA")
def test_asking_for_cuda_without_a_gpu_falls_back_to_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime.choose_device("cuda") == "cpu"
    monkeypatch.setenv("REPLY_DEVICE", "cuda")
    assert runtime.choose_reply_device() == torch.device("cpu")


def test_only_documented_variables_can_be_read() -> None:
    with pytest.raises(KeyError, match="NOT_A_SETTING"):
        runtime.read_env("NOT_A_SETTING", str, "anything")


def _environment_reads(path: Path) -> list[int]:
    """Lines of `path` that read os.environ or os.getenv."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            lines.append(node.lineno)
    return lines


def test_the_environment_is_read_in_inference_runtime_only() -> None:
    readers = {path.relative_to(INFERENCE).as_posix() for path in INFERENCE.rglob("*.py") if _environment_reads(path)}
    # _omp.py only sets a default for OpenMP before torch loads; it reads nothing.
    assert readers == {"runtime.py", "_omp.py"}


def test_every_variable_is_documented_in_the_runtime_table_and_the_docs() -> None:
    docs = (DOCS / "nlu-engine.md").read_text(encoding="utf-8")
    for name in runtime.ENVIRONMENT:
        assert f"| `{name}` |" in runtime.__doc__
        assert f"`{name}`" in docs


# The out-of-scope decision on constructed logits

LABELS = ["balance", "oos", "card"]
IN_SCOPE = np.array([0, 2])


def _decide(logits: list[list[float]], scores: list[float], threshold: float, oos_index: int | None = 1):
    return decide(np.array(logits), np.array(scores), LABELS, 1.0, threshold, oos_index, IN_SCOPE, top_k=2)


def test_a_tie_between_the_oos_label_and_the_top_in_scope_label_keeps_the_answer() -> None:
    (tie,) = _decide([[2.0, 2.0, 0.0]], [0.9], threshold=0.5)
    assert (tie.intent, tie.out_of_scope) == ("balance", False)
    assert tie.confidence == pytest.approx(np.exp(2) / (2 * np.exp(2) + 1))
    (oos,) = _decide([[2.0, 2.001, 0.0]], [0.9], threshold=0.5)
    assert (oos.intent, oos.out_of_scope) == ("oos", True)
    assert oos.confidence > tie.confidence and [label for label, _ in oos.ranking] == ["balance", "card"]


def test_a_score_equal_to_the_threshold_is_in_scope_and_one_below_is_not() -> None:
    logits = [[3.0, -9.0, 1.0]] * 3
    at, below, above = _decide(logits, [0.7, 0.7 - 1e-9, 0.8], threshold=0.7, oos_index=None)
    assert (at.intent, at.out_of_scope) == ("balance", False)
    assert (below.intent, below.out_of_scope) == ("oos", True)
    assert below.confidence == at.confidence  # the top in-scope probability, whichever rule decides
    assert not above.out_of_scope
