"""Fixtures of the fault suite: a small study with real face images, a results study, a world-readable
scratch folder (helpers live in faultkit.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture
def open_dir():
    """A world-readable scratch folder (the unprivileged user must read the inputs), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="emoalign-faults-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def face_study(tmp_path_factory):
    """The built-in `small` simulated study with its PNG faces (144 images), plus a 12-image stimuli table."""
    from emoalign.simulate import simulate_study

    root = tmp_path_factory.mktemp("faces")
    simulate_study(root / "study", "small", seed=1, images=True)
    stim = pd.read_parquet(root / "study" / "stimuli.parquet")
    stim.head(12).to_parquet(root / "study" / "stimuli12.parquet", index=False)
    return root / "study"


@pytest.fixture(scope="session")
def results_study(tmp_path_factory):
    """The engine test study (planted effects) with a four-analysis spec, one of them fitted in R."""
    from engine_study import SPEC, write_study

    root = tmp_path_factory.mktemp("results_study")
    info = write_study(root, n_ids=12, n_raters=30, per_rater=30)
    spec = root / "faults.yaml"
    spec.write_text(SPEC.split("analyses:")[0] + """\
analyses:
  - {id: ceiling, kind: reliability, raters: human, dimension: valence, bootstrap: 50, seed: 1}
  - {id: agreement, kind: agreement, raters: [gemma3, fer_a], dimension: [valence, arousal]}
  - {id: classification, kind: classification, raters: machines}
  - id: bias_lmm
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: rating ~ rater_type * emotion + (1|image_id)
    reference_levels: {emotion: angry, rater_type: human}
""")
    return {**info, "spec": spec}
