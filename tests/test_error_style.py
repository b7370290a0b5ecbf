"""Issue #26: every package's loader errors are the core's DataFileError (one message style)."""

from __future__ import annotations

import pickle

from adapterlab.core.engine import DataFileError


def test_package_loader_errors_are_the_core_class():
    """pointclip's DataError / MeshLoadError and audio's AudioFileError reuse the core class."""
    from adapterlab.audio.audio_io import AudioFileError
    from adapterlab.pointclip.data.meshio import MeshLoadError
    from adapterlab.pointclip.errors import DataError

    assert DataError is DataFileError
    for cls in (MeshLoadError, AudioFileError):
        err = cls("/d/f.off", "mesh has no faces")
        assert isinstance(err, DataFileError)
        assert str(err) == "/d/f.off: mesh has no faces"
        assert type(pickle.loads(pickle.dumps(err))) is cls
    assert MeshLoadError("/d/f.off", "empty").reason == "empty"
