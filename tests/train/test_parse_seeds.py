import pytest

from trainwell.errors import ConfigError
from trainwell.train.rng import parse_seeds


def test_compare_and_the_studies_read_seeds_the_same_way():
    import trainwell.compare as compare
    import trainwell.experiments.transfer_study as study

    assert compare.parse_seeds is parse_seeds is study.parse_seeds
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]
    assert parse_seeds(["0", 3]) == [0, 3]


@pytest.mark.parametrize("bad", ["-1", "0,x", "2-x", "", "1,1", [True]])
def test_bad_seeds_name_the_option(bad):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(bad)
