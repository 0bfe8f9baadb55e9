import trainwell


def test_every_public_name_resolves():
    missing = []
    for name in trainwell.__all__:
        try:
            getattr(trainwell, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, "\n".join(missing)


def test_version_is_a_string():
    assert isinstance(trainwell.__version__, str) and trainwell.__version__.count(".") == 2
