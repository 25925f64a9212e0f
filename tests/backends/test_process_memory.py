import platform

import pytest

from instrl_trl.backends import process_memory
from instrl_trl.backends.process_memory import release_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_hands_freed_memory_back():
    assert release_freed_memory() is True


def test_a_c_library_without_malloc_trim_is_left_alone(monkeypatch):
    monkeypatch.setattr(process_memory.ctypes.util, "find_library", lambda name: None)
    process_memory._malloc_trim.cache_clear()
    try:
        assert release_freed_memory() is False
    finally:
        process_memory._malloc_trim.cache_clear()
