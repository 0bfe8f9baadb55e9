import pytest

from trainwell.errors import ConfigError
from trainwell.registry import Registry


def test_registry_get_is_case_insensitive_and_knows_aliases():
    reg = Registry("activation")
    reg.register("leaky_relu", object(), aliases=("lrelu",), description="max(αz, z)")
    assert reg.get("Leaky-ReLU").name == "leaky_relu"
    assert reg.get("lrelu").name == "leaky_relu"
    assert "leaky_relu" in reg and "relu6" not in reg


def test_unknown_name_error_names_field_value_and_every_valid_name():
    reg = Registry("activation")
    reg.register("relu", object())
    reg.register("elu", object())
    with pytest.raises(ConfigError) as info:
        reg.get("relu6", field="model.activation")
    msg = str(info.value)
    assert msg.startswith("model.activation: received 'relu6'")
    assert "relu" in msg and "elu" in msg


def test_duplicate_registration_is_refused():
    reg = Registry("optimizer")
    reg.register("sgd", object())
    with pytest.raises(ValueError):
        reg.register("sgd", object())
