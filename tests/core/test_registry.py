import pytest

from core.registry import Registry, RegistryError


def test_register_and_get():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    reg.register("b", len)
    assert reg.get("a") is A and reg.get("b") is len
    assert list(reg) == ["a", "b"] and "a" in reg


def test_unknown_name_lists_the_registered_names():
    reg = Registry("widget")
    reg.register("alpha", int)
    reg.register("beta", float)
    with pytest.raises(RegistryError) as err:
        reg.get("gamma")
    assert str(err.value) == "unknown widget 'gamma'; registered widget names: alpha, beta"


def test_duplicate_name_is_refused():
    reg = Registry("widget")
    reg.register("x", int)
    reg.register("x", int)  # the same object again is harmless (module re-import)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("x", float)
