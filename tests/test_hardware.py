import pytest

from hardware import UnknownDeviceError, device_names, load_device

REQUIRED = {"h100-sxm", "h100-pcie", "h200", "a100-80gb", "a100-40gb", "l4", "l40s", "mi300x", "b200", "cpu"}


def test_catalog_has_every_required_device_and_all_load():
    assert REQUIRED <= set(device_names())
    for name in device_names():
        d = load_device(name)
        assert d.name == name and d.sources and d.price_as_of


@pytest.mark.parametrize("name,bf16,gb_per_s,gib", [
    ("h100-sxm", 989.4, 3350, 80), ("a100-80gb", 312, 2039, 80), ("h200", 989.4, 4800, 141), ("l4", 121, 300, 24),
])
def test_dense_peaks_not_sparsity_figures(name, bf16, gb_per_s, gib):
    d = load_device(name)
    assert d.peak_tflops["bf16"] == pytest.approx(bf16)
    assert d.memory_bandwidth_gb_per_s == gb_per_s and d.memory_gib == gib


def test_ridge_point_is_peak_over_bandwidth():
    d = load_device("a100-80gb")
    assert d.ridge_flops_per_byte("bf16") == pytest.approx(312e12 / 2039e9)


def test_user_device_file_by_path(tmp_path):
    text = (load_device("l4").origin and open(load_device("l4").origin).read()).replace('name = "l4"', 'name = "my-gpu"')
    path = tmp_path / "my_gpu.toml"
    path.write_text(text)
    assert load_device(str(path)).name == "my-gpu"


def test_unknown_device_lists_known_ones():
    with pytest.raises(UnknownDeviceError, match="known devices: .*h100-sxm"):
        load_device("h1000")


def test_bad_device_file_names_missing_key_and_bad_value(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nkind = "gpu"\n')
    with pytest.raises(ValueError, match="missing required key"):
        load_device(str(path))
    good = open(load_device("l4").origin).read()
    path.write_text(good.replace("memory_bandwidth_gb_per_s = 300.0", "memory_bandwidth_gb_per_s = -1.0"))
    with pytest.raises(ValueError, match="memory_bandwidth_gb_per_s must be a number > 0"):
        load_device(str(path))


def test_catalog_name_wins_over_a_same_named_directory(tmp_path, monkeypatch):
    """`--hardware l4` run beside an `l4/` folder still means the catalog device; `./l4` is the folder."""
    import pytest

    from hardware import load_device

    (tmp_path / "l4").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_device("l4").name == "l4"
    with pytest.raises(ValueError, match="is a directory"):
        load_device("./l4")


@pytest.mark.parametrize("find, add, message", [
    ("tdp_w = ", "memory_bandwith_gb_per_s = 400.0\n",
     r"unknown field\(s\) \['memory_bandwith_gb_per_s'\]; allowed: name, display_name, vendor, kind, family, "
     r"memory_gib, memory_bandwidth_gb_per_s, tdp_w, idle_w, peak_tflops, host_link, interconnect, price, sources"),
    ("usd_per_hour = ", "usd_per_hr = 3.0\n",
     r"unknown field\(s\) \['price.usd_per_hr'\]; allowed in \[price\]: as_of, source, usd_per_hour"),
    ("\ngb_per_s = ", "\ngbps = 64.0", r"unknown field\(s\) \['host_link.gbps'\]; allowed in \[host_link\]: gb_per_s, kind"),
])
def test_a_misspelt_device_key_is_refused_not_ignored(tmp_path, find, add, message):
    """A typo in a device file would silently keep the default (or fail later, far from the cause)."""
    text = open(load_device("l4").origin).read()
    i = text.index(find)
    path = tmp_path / "typo.toml"
    path.write_text(text[:i] + add + text[i:])
    with pytest.raises(ValueError, match=f"^{path}: {message}$"):
        load_device(str(path))


def test_a_misspelt_host_key_is_refused_not_ignored(tmp_path):
    from hardware import load_host

    text = open(load_host("xeon-8462y").origin).read()
    path = tmp_path / "host.toml"
    path.write_text(text.replace("cores = 32", "cores = 32\nthreads = 64"))
    with pytest.raises(ValueError, match=rf"^{path}: unknown field\(s\) \['threads'\]; allowed: name, display_name"):
        load_host(str(path))
