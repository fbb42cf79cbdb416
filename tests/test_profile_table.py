import math

import pytest

from profiles.table import (
    COLUMNS,
    ProfileError,
    ProfileRow,
    load_profile,
    make_shape,
    read_table,
    save_profile,
)


def _row(op="attn_qkv", t=12.5, **dims):
    return ProfileRow(op=op, dtype="fp32", shape=make_shape(**(dims or {"num_tokens": 4, "in_dim": 8, "out_dim": 16})),
                      time_median_us=t, time_p10_us=t * 0.9, time_p90_us=t * 1.1, time_mean_us=t, time_std_us=0.5,
                      extra={"num_repeats": 10.0})


def test_round_trip(tmp_path):
    rows = [_row(), _row(t=3.25, num_tokens=8, in_dim=8, out_dim=16)]
    save_profile(rows, {"device": "cpu", "dtype": "fp32"}, tmp_path / "p")
    got = load_profile(tmp_path / "p")
    assert got.metadata == {"device": "cpu", "dtype": "fp32"}
    assert [r.time_median_us for r in got.rows] == [12.5, 3.25]
    assert got.rows[1].shape["num_tokens"] == 8 and got.rows[1].shape["batch_size"] == 0
    assert got.rows[0].extra == {"num_repeats": 10.0}
    assert math.isnan(got.rows[0].extra.get("power_mean_w", math.nan))
    header = (tmp_path / "p" / "table.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == COLUMNS


@pytest.mark.parametrize("bad", ["nan", "-3.0", "", "inf", "abc"])
def test_bad_time_rejected_with_row(tmp_path, bad):
    path = tmp_path / "table.csv"
    save_profile([_row(), _row()], {"device": "cpu", "dtype": "fp32"}, tmp_path)
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[COLUMNS.index("time_median_us")] = bad
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProfileError, match=r"table.csv:3"):
        read_table(path)


def test_negative_spread_rejected():
    with pytest.raises(ValueError, match="time_std_us"):
        ProfileRow(op="x", dtype="fp32", shape=make_shape(), time_median_us=1.0, time_std_us=-1.0)


def test_missing_sidecar(tmp_path):
    save_profile([_row()], {"device": "cpu", "dtype": "fp32"}, tmp_path)
    (tmp_path / "metadata.json").unlink()
    with pytest.raises(ProfileError, match="metadata sidecar"):
        load_profile(tmp_path)


def test_unknown_shape_column():
    with pytest.raises(ValueError, match="unknown shape column"):
        make_shape(num_tokenz=3)
