import numpy as np
import pytest

from trainwell.data import infer_task, load_csv, load_dataset, load_npz
from trainwell.errors import ConfigError, DataError


def test_npz_integer_labels_are_multiclass_with_test_arrays(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.random.rand(30, 5).astype(np.float32), y=np.arange(30) % 3,
             x_test=np.random.rand(6, 5), y_test=np.array([0, 1, 2, 3, 0, 1]))
    raw = load_npz(path)
    assert (raw.task, raw.n_outputs, raw.name) == ("multiclass", 4, "mine")
    assert raw.x_test.shape == (6, 5)


@pytest.mark.parametrize(("y", "task", "n"), [
    (np.array([0.5, 1.5, 2.0]), "regression", 1),
    (np.random.rand(3, 2), "regression", 2),
    (np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1]]), "multilabel", 3),
    (np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]), "multilabel", 2),
    (np.array([2, 0, 1], dtype=np.uint8), "multiclass", 3),
])
def test_task_is_inferred_from_targets(y, task, n):
    assert infer_task(y) == (task, n)


def test_npz_missing_array_is_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="no array 'x'"):
        load_npz(path)


def test_csv_numeric_features_and_integer_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,target\n1.5,2,0\n3,4e-1,2\n-1,0,1\n")
    raw = load_csv(path)
    assert raw.task == "multiclass" and raw.n_outputs == 3
    np.testing.assert_allclose(raw.x_train, [[1.5, 2], [3, 0.4], [-1, 0]])
    assert raw.y_train.tolist() == [0, 2, 1] and raw.x_test is None


def test_csv_float_target_is_regression_and_text_target_gets_class_names(tmp_path):
    reg = tmp_path / "r.csv"
    reg.write_text("x,price\n1,2.5\n2,3.0\n")
    raw = load_csv(reg, target="price")
    assert (raw.task, raw.n_outputs, raw.y_train.dtype) == ("regression", 1, np.float32)
    cls = tmp_path / "c.csv"
    cls.write_text("x,kind\n1,dog\n2,cat\n3,dog\n")
    raw = load_csv(cls, target="kind")
    assert raw.class_names == ["cat", "dog"] and raw.y_train.tolist() == [1, 0, 1]


def test_csv_non_numeric_feature_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("age,city,target\n3,Paris,1\n4,Lyon,0\n")
    with pytest.raises(DataError, match=r"column 'city' is not numeric \(line 2 holds 'Paris'\)"):
        load_csv(path)


def test_csv_unknown_target_lists_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="data.target: received 'label'.*a, b"):
        load_csv(path, target="label")


def test_load_dataset_on_csv_holds_out_a_test_set(tmp_path):
    path = tmp_path / "t.csv"
    rows = "\n".join(f"{i},{i % 7},{i % 2}" for i in range(100))
    path.write_text("f1,f2,target\n" + rows + "\n")
    s = load_dataset(path, validation=0.25)
    assert len(s.x_test) == 20 and len(s.x_val) == 20 and len(s.x_train) == 60
    assert s.input_shape == (2,) and s.task == "multiclass" and s.y_train.dtype.is_floating_point is False


def test_file_format_name_without_a_path_is_a_config_error():
    with pytest.raises(ConfigError, match="data.path"):
        load_dataset("npz")


def test_nan_in_a_user_file_is_reported_with_file_and_example(tmp_path):
    path = tmp_path / "nan.npz"
    x = np.zeros((10, 2), np.float32)
    x[7, 0] = np.nan
    np.savez(path, x=x, y=np.arange(10) % 2)
    with pytest.raises(DataError, match=r"nan.npz: data.x_train: 1 feature value is NaN or Inf \(first at example 7\)"):
        load_dataset(path, validation=0.2)


def test_labels_of_a_user_test_set_are_checked(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]), x_test=np.zeros((2, 2)),
             y_test=np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="d.npz: data.y_test: multiclass labels must be integers"):
        load_dataset(path, validation=1)
