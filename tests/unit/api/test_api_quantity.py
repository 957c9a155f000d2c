import pytest

from kubevirt_runtime.api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes


@pytest.mark.parametrize("text, expected", [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("1024", 1024),
                                            (2048, 2048), ("1.5Gi", 3 * 2**29), ("1e3", 1000)])
def test_memory(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text, expected", [("100m", 100), ("2", 2000), (1, 1000), ("0.5", 500)])
def test_cpu(text, expected):
    assert cpu_millis(text) == expected


@pytest.mark.parametrize("bad", ["", "1X", "Gi", True, None])
def test_invalid(bad):
    with pytest.raises(ValueError):
        memory_bytes(bad)


def test_format():
    assert format_memory(278 * 2**20) == "278Mi"
    assert format_memory(1000) == "1000"
    assert format_cpu(1100) == "1100m" and format_cpu(2000) == "2"
