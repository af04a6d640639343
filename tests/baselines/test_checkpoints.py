"""Checkpoints are safe to load (``baselines._runs``): the SHA-256 sidecar is checked before
anything is unpickled, the pickle is read weights-only, and a checkpoint of another format
or another run's config is refused, each with an error that names the file.

Each check is shown able to fail: the crafted pickle does run its code under a full
unpickle, and ``torch.load`` alone reads a flipped byte in tensor data without complaint.
The runner tests resume real short runs of the comm, peers and qmix learners.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

import metaenvs  # noqa: E402
from baselines import _runs  # noqa: E402
from baselines._runs import (  # noqa: E402
    CHECKPOINT_FORMAT,
    CheckpointError,
    checkpoint_sidecar,
    read_checkpoint,
    save_checkpoint,
)
from baselines.comm.experiment import EXPERIMENT as COMM  # noqa: E402
from baselines.comm.learner import CommArgs, CommLearner  # noqa: E402
from baselines.mnmpg.experiment import EXPERIMENT as MNMPG  # noqa: E402
from baselines.mnmpg.learner import MixArgs, MixingLearner  # noqa: E402
from baselines.peers.experiment import EXPERIMENT as PEERS  # noqa: E402
from baselines.peers.learner import PeerArgs, PeerMetaLearner  # noqa: E402


# -- a crafted pickle --------------------------------------------------------------------
def plant(marker: str) -> str:
    """What the crafted pickle calls when it is unpickled: writes ``marker``."""
    Path(marker).write_text("code from a checkpoint ran\n")
    return "planted"


class Planted:
    """Unpickles by calling :func:`plant` (any callable would do: ``os.system`` ...)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return plant, (self.marker,)


def write_sidecar(path: Path) -> None:
    """A correct ``sha256sum`` line beside ``path``, computed here (not by ``_runs``)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    checkpoint_sidecar(path).write_text(f"{digest}  {path.name}\n")


def plant_checkpoint(path: Path, marker: Path, sidecar: bool) -> None:
    """A checkpoint stamped like a real one, with the crafted object inside."""
    payload = {"format": CHECKPOINT_FORMAT, "metaenvs": metaenvs.__version__, "config": {}}
    torch.save({**payload, "runner": {"rows": [Planted(marker)]}}, path)
    checkpoint_sidecar(path).unlink(missing_ok=True)
    if sidecar:
        write_sidecar(path)


def test_the_crafted_pickle_runs_its_code_under_a_full_unpickle(tmp_path):
    """The control: without weights_only, loading it writes the marker."""
    marker = tmp_path / "marker"
    plant_checkpoint(tmp_path / "checkpoint.pt", marker, sidecar=True)
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert marker.is_file()


@pytest.mark.parametrize("sidecar", [True, False], ids=["sidecar", "no-sidecar"])
def test_a_crafted_pickle_is_refused_and_its_code_never_runs(tmp_path, sidecar):
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "marker"
    plant_checkpoint(path, marker, sidecar)
    # a correct sidecar only says the file is unchanged: weights_only is what refuses it
    expected = "refused to load.*Unsupported global" if sidecar else "no checkpoint.pt.sha256"
    with pytest.raises(CheckpointError, match=expected) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


# -- save and read -----------------------------------------------------------------------
def test_a_checkpoint_round_trips_with_its_stamp_and_sidecar(tmp_path):
    path = tmp_path / "checkpoint.pt"
    rng = np.random.default_rng(7)
    rng.random(3)  # a state with a 128-bit counter and increment
    payload = {
        "learner": {"w": torch.randn(3, 2), "gen": torch.Generator().manual_seed(1).get_state()},
        "rng": rng.bit_generator.state,
        "rows": [{"episodes": 0, "eval_reward": float("nan")}, {"episodes": 4, "x": 1.5}],
        "counters": (3, 2**70),
    }
    config = {"seed": 0, "lr": 1e-3, "hidden": [64, 64], "name": None}
    save_checkpoint(path, payload, config)
    line = checkpoint_sidecar(path).read_text()
    assert line == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  checkpoint.pt\n"
    assert not list(tmp_path.glob("*.tmp"))
    loaded = read_checkpoint(path, config)
    assert loaded["format"] == CHECKPOINT_FORMAT and loaded["metaenvs"] == metaenvs.__version__
    assert loaded["config"] == config
    torch.testing.assert_close(loaded["learner"]["w"], payload["learner"]["w"])
    assert torch.equal(loaded["learner"]["gen"], payload["learner"]["gen"])
    again = np.random.default_rng(0)
    again.bit_generator.state = loaded["rng"]
    assert again.random() == rng.random()
    assert loaded["rows"][1] == payload["rows"][1] and loaded["counters"] == (3, 2**70)
    assert read_checkpoint(tmp_path / "none.pt") is None


def test_payload_keys_of_the_stamp_are_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "checkpoint.pt", {"config": {}}, {})


def test_a_save_killed_between_its_renames_still_resumes(tmp_path):
    """The new checkpoint is in place, the sidecar still names the old one; the new
    digest waits in ``checkpoint.pt.sha256.tmp``."""
    path, sidecar = tmp_path / "checkpoint.pt", checkpoint_sidecar(tmp_path / "checkpoint.pt")
    save_checkpoint(path, {"step": 1}, {})
    old = sidecar.read_text()
    save_checkpoint(path, {"step": 2}, {})
    sidecar.rename(sidecar.with_name(sidecar.name + ".tmp"))
    sidecar.write_text(old)
    assert read_checkpoint(path)["step"] == 2
    assert sidecar.read_text() != old and not sidecar.with_name(sidecar.name + ".tmp").exists()
    # a pending digest of some other file does not vouch for this one
    save_checkpoint(path, {"step": 3}, {})
    sidecar.with_name(sidecar.name + ".tmp").write_text(old)
    sidecar.write_text(old)
    with pytest.raises(CheckpointError, match="SHA-256"):
        read_checkpoint(path)


def test_a_foreign_format_is_refused_naming_the_file_and_versions(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    with monkeypatch.context() as m:
        m.setattr(_runs, "CHECKPOINT_FORMAT", CHECKPOINT_FORMAT + 1)
        m.setattr(metaenvs, "__version__", "9.9.9")
        save_checkpoint(path, {"learner": {}}, {"seed": 0})
    with pytest.raises(CheckpointError, match=rf"format {CHECKPOINT_FORMAT + 1}") as info:
        read_checkpoint(path, {"seed": 0})
    assert str(path) in str(info.value) and "metaenvs 9.9.9" in str(info.value)
    # a checkpoint from before the stamp (a verified one, so only the format is wrong)
    torch.save({"learner": {}, "runner": {"rows": []}}, path)
    write_sidecar(path)
    with pytest.raises(CheckpointError, match=f"{path}: checkpoint format None"):
        read_checkpoint(path)


def test_a_foreign_config_is_refused_naming_the_fields(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {}, {"seed": 1, "lr": 0.1, "episodes": 10})
    with pytest.raises(CheckpointError, match=r"seed \(saved 1, now 0\)") as info:
        read_checkpoint(path, {"seed": 0, "lr": 0.1, "episodes": 20}, budget={"episodes"})
    assert str(path) in str(info.value) and "episodes" not in str(info.value)
    assert read_checkpoint(path, {"seed": 1, "lr": 0.1, "episodes": 20}, budget={"episodes"})


# -- the runners, over real short runs ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Kind:
    """How to run one runner for a short and a longer budget."""

    run: Callable[[Path, bool, int], Path]  # (out, longer, seed) -> run directory
    learner: type
    train: str  # the learner method that takes a training step


def _comm(out: Path, longer: bool, seed: int) -> Path:
    args = CommArgs(method="reinforce", seed=seed, episodes=8 if longer else 4, eval_every=2,
                    eval_episodes=1, envs=2, warmup_episodes=2, batch_size=32, hidden=16,
                    meta_k=2, buffer_size=5000)  # fmt: skip
    return COMM.run(args, out, progress=False)


def _peers(out: Path, longer: bool, seed: int) -> Path:
    args = PeerArgs(method="meta_pg", seed=seed, k=2, horizon=4, length=2, chains=2,
                    iterations=4 if longer else 2, eval_every=2)  # fmt: skip
    return PEERS.run(args, out, progress=False)


def _qmix(out: Path, longer: bool, seed: int) -> Path:
    args = MixArgs(method="mnmpg", seed=seed, n_envs=4, batch_size=4, meta_interval=100,
                   epsilon_anneal_steps=500, env_steps=400 if longer else 200, eval_every=200,
                   eval_episodes=4)  # fmt: skip
    return MNMPG.run(args, out, progress=False)


KINDS = {
    "comm": Kind(_comm, CommLearner, "train_iteration"),
    "peers": Kind(_peers, PeerMetaLearner, "train_iteration"),
    "qmix": Kind(_qmix, MixingLearner, "iteration"),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    torch.set_num_threads(1)
    return KINDS[request.param]


def snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``run_dir``: its bytes and modification time."""
    return {
        str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def forbid_training(monkeypatch, kind: Kind) -> None:
    def train(self, *args, **kwargs):
        raise AssertionError("a training step ran from an unverified checkpoint")

    monkeypatch.setattr(kind.learner, kind.train, train)


def flip_a_tensor_byte(path: Path) -> None:
    """Invert one byte in the middle of the checkpoint's largest tensor storage."""
    with zipfile.ZipFile(path) as archive:
        storages = [i for i in archive.infolist() if "/data/" in i.filename]
    info = max(storages, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    header = info.header_offset  # a zip local header: 30 bytes, then the name and extra
    name_len, extra_len = struct.unpack("<HH", data[header + 26 : header + 30])
    data[header + 30 + name_len + extra_len + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_real_run_resumes_from_its_verified_weights_only_checkpoint(tmp_path, kind):
    whole = kind.run(tmp_path / "a", True, 0)
    kind.run(tmp_path / "b", False, 0)
    path = tmp_path / "b" / whole.relative_to(tmp_path / "a") / "checkpoint.pt"
    assert read_checkpoint(path)["format"] == CHECKPOINT_FORMAT  # verified, weights-only
    resumed = kind.run(tmp_path / "b", True, 0)
    a, b = (np.genfromtxt(d / "metrics.csv", delimiter=",", names=True) for d in (whole, resumed))
    assert a.dtype.names == b.dtype.names and len(a) == len(b) > 2
    for column in a.dtype.names:
        if column != "wall_s" and not column.endswith("_per_s"):
            np.testing.assert_allclose(a[column], b[column], rtol=1e-5, err_msg=column)


def test_a_flipped_tensor_byte_stops_the_resume_before_training(tmp_path, kind, monkeypatch):
    run_dir = kind.run(tmp_path, False, 0)
    path = run_dir / "checkpoint.pt"
    flip_a_tensor_byte(path)
    torch.load(path, weights_only=True)  # the control: torch alone does not notice
    before = snapshot(run_dir)
    forbid_training(monkeypatch, kind)
    with pytest.raises(CheckpointError, match="SHA-256") as info:
        kind.run(tmp_path, True, 0)
    assert str(path) in str(info.value)
    assert snapshot(run_dir) == before


def test_a_crafted_checkpoint_stops_the_resume_and_runs_nothing(tmp_path, kind, monkeypatch):
    run_dir = kind.run(tmp_path, False, 0)
    marker = tmp_path / "marker"
    plant_checkpoint(run_dir / "checkpoint.pt", marker, sidecar=True)
    before = snapshot(run_dir)
    forbid_training(monkeypatch, kind)
    with pytest.raises(CheckpointError, match="refused to load") as info:
        kind.run(tmp_path, True, 0)
    assert str(run_dir / "checkpoint.pt") in str(info.value)
    assert not marker.exists() and snapshot(run_dir) == before


def test_another_runs_checkpoint_stops_the_resume(tmp_path, kind, monkeypatch):
    """Copied (with its sidecar) from seed 1 into seed 0's directory, config.json agreeing."""
    mine, theirs = kind.run(tmp_path / "a", False, 0), kind.run(tmp_path / "b", False, 1)
    for name in ("checkpoint.pt", "checkpoint.pt.sha256"):
        shutil.copyfile(theirs / name, mine / name)
    before = snapshot(mine)
    forbid_training(monkeypatch, kind)
    with pytest.raises(CheckpointError, match=r"another config.*seed \(saved 1, now 0\)") as info:
        kind.run(tmp_path / "a", True, 0)
    assert str(mine / "checkpoint.pt") in str(info.value)
    assert snapshot(mine) == before
