import dataclasses
from pathlib import Path

import pytest

from emoreason.config import ConfigError, check, load_config


@dataclasses.dataclass
class Inner:
    rate: float = 1.0
    mode: str = "mean"

    def __post_init__(self):
        check(self.rate > 0, "rate", "a positive number", self.rate)


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner = dataclasses.field(default_factory=Inner)
    items: dict[str, Inner] = dataclasses.field(default_factory=dict)
    size: int | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides(tmp_path):
    path = write(tmp_path, "name: a\ninner: {rate: 2}\nitems: {x: {mode: cls}}\n")
    cfg = load_config(Outer, path, ["inner.mode=none", "items.y.rate=0.5", "size=3", "tags=[a, b]"])
    assert cfg == Outer("a", Inner(2.0, "none"), {"x": Inner(1.0, "cls"), "y": Inner(0.5)}, 3, ["a", "b"])
    assert load_config(Outer, path, ["size=null"]).size is None


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("name: a\nbogus: 1\n", [], "key 'bogus': unknown key"),
        ("name: a\ninner: {speed: 1}\n", [], "key 'inner.speed': unknown key"),
        ("inner: {}\n", [], "key 'name': required key is missing"),
        ("name: a\n", ["inner.rate=-1"], "key 'inner.rate': expected a positive number, got -1"),
        ("name: a\n", ["inner.rate=fast"], "key 'inner.rate': expected a number, got 'fast'"),
        ("name: a\n", ["size=2.5"], "key 'size'"),
        ("name: a\n", ["items.q.rate=0"], "key 'items.q.rate'"),
        ("name: a\n", ["noequals"], "expected key=value"),
        ("- a\n- b\n", [], "expected a mapping at the top level"),
    ],
)
def test_errors_name_the_key(tmp_path, text, overrides, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path, overrides)
    assert message in str(info.value)
    # A bad override is blamed on the command line, never on the file it did not come from.
    source = f"command line override {overrides[0]}" if overrides else str(path)
    assert str(info.value).startswith(source + ":")


@pytest.mark.parametrize("raw, value", [("1e-4", 1e-4), ("5e-6", 5e-6), ("2E+3", 2000.0), ("+1.5e-3", 1.5e-3), (".5", 0.5), ("3", 3)])
def test_yaml12_floats_in_overrides_and_files(tmp_path, raw, value):
    from_override = load_config(Inner, None, [f"rate={raw}"]).rate
    from_file = load_config(Inner, write(tmp_path, f"rate: {raw}\n")).rate
    assert from_override == from_file == value


def test_exponent_floats_in_plain_strings_stay_strings(tmp_path):
    assert load_config(Outer, write(tmp_path, "name: 1e-4x\n")).name == "1e-4x"
    assert load_config(Outer, None, ["name='1e-4'"]).name == "1e-4"


def test_bad_yaml_names_its_source(tmp_path):
    with pytest.raises(ConfigError, match=r"^command line override tags=\[a: the value is not valid YAML"):
        load_config(Outer, write(tmp_path, "name: a\n"), ["tags=[a"])
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML"):
        load_config(Outer, write(tmp_path, "name: [a\n"))


def test_file_error_with_overrides_blames_the_file(tmp_path):
    path = write(tmp_path, "name: a\ninner: {rate: -1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path, ["size=3"])
    assert str(info.value).startswith(f"{path}: key 'inner.rate'")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "none.yaml")


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("prep/*.yaml")), ids=lambda p: p.name)
def test_every_prep_config_loads(path):
    from emoreason.data_prep.prep_config import PrepConfig

    # Configs leave run-specific paths to the command line; fill them the way the demo does.
    fill = ["input=x.jsonl", "output_dir=out"] + [f"encoders.{m}.model=m" for m in ("audio", "face", "video", "frame")]
    cfg = load_config(PrepConfig, path, fill)
    assert cfg.encoders and path.read_text().startswith("#")
