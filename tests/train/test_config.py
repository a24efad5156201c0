"""Training config: TOML parsing, --set overrides, one-line errors, TOML round trip, LR schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvt4g.errors import ConfigError
from mvt4g.train.builders import lr_factor, resolve_model_config
from mvt4g.train.config import (
    CONFIGS_DIR,
    TrainConfig,
    all_keys,
    apply_overrides,
    config_names,
    diff_keys,
    find_config,
    from_dict,
    load_config,
    to_toml,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "mvt4g" / "train" / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_validate(path):
    cfg = load_config(path).validate()
    assert cfg.data.paths
    cfg.model.init = ""  # a local model folder (Wan example): not here; the preset stands in for it
    resolve_model_config(cfg)  # the model side of the config is consistent too


def test_example_files_exist():
    assert config_names() == ["base", "mvtrack4gen", "small", "tiny", "wan2.1-1.3b"] == [p.stem for p in EXAMPLES]
    assert not list((REPO / "examples").glob("*.toml"))  # one copy of each, the packaged one


def test_example_configs_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in config_names():
        assert find_config(name) == CONFIGS_DIR / f"{name}.toml"
        assert load_config(name) == load_config(CONFIGS_DIR / f"{name}.toml")
    (tmp_path / "tiny").mkdir()  # a name is a name first, a path second
    assert find_config("tiny") == CONFIGS_DIR / "tiny.toml"
    (tmp_path / "mine.toml").write_text("[train]\nsteps = 3\n")
    assert load_config("mine.toml").train.steps == 3


def test_unknown_config_name_lists_the_names_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        find_config("tinny")
    msg = str(err.value)
    assert "no example config named 'tinny' (did you mean 'tiny'?)" in msg and "\n" not in msg
    assert msg.endswith("(example configs: base, mvtrack4gen, small, tiny, wan2.1-1.3b)")
    with pytest.raises(ConfigError, match="config file does not exist \\(or give an example config by name: base, "):
        find_config("nope.toml")


def test_cli_config_by_name_exit_2(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--config", "nope", "--out", str(tmp_path / "run"))
    assert result.code == 2 and "example configs: base, mvtrack4gen, small, tiny, wan2.1-1.3b" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_defaults_are_the_papers():
    cfg = TrainConfig()
    assert cfg.loss.lambda_track == 0.01 and cfg.loss.lambda_corr == 0.01 and cfg.loss.corr
    assert cfg.model.tracking_head
    assert cfg.optim.train_groups == ["self_attention", "camera", "tracking_head"]
    assert cfg.optim.lr == 1e-4 and cfg.loss.shift == 5.0 and cfg.loss.weighting == "bell"


def test_unknown_key_suggests(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[optim]\nlrr = 1e-4\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "optim.lrr" in msg and "did you mean 'optim.lr'" in msg and str(path) in msg and "\n" not in msg


def test_unknown_section_suggests(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[optimizer]\nlr = 1e-4\n")
    with pytest.raises(ConfigError, match=r"\[optimizer\].*did you mean 'optim'"):
        load_config(path)


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[optim]\nlr = "fast"\n', "optim.lr must be a number"),
        ("[train]\nsteps = 1.5\n", "train.steps must be an integer"),
        ("[model]\ntracking_head = 1\n", "model.tracking_head must be true or false"),
        ('[data]\npaths = "data"\n', "data.paths must be a list of strings"),
        ("[data]\npaths = [1]\n", "data.paths[0] must be a string"),
    ],
)
def test_wrong_types(tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_not_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[optim\n")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_config(path)


def test_overrides_parse_and_check():
    cfg = apply_overrides(TrainConfig(), ["optim.lr=5e-5", "model.preset=small", "data.paths=['a', 'b']",
                                          "model.tracking_head=false", "optim.betas=[0.8, 0.9]", "train.steps=7",
                                          "model.init='x y'"])  # fmt: skip
    assert cfg.optim.lr == 5e-5 and cfg.model.preset == "small" and cfg.data.paths == ["a", "b"]
    assert cfg.model.tracking_head is False and cfg.optim.betas == [0.8, 0.9] and cfg.train.steps == 7
    assert cfg.model.init == "x y"
    assert isinstance(apply_overrides(TrainConfig(), ["optim.lr=1"]).optim.lr, float)
    with pytest.raises(ConfigError, match="did you mean 'optim.lr'"):
        apply_overrides(TrainConfig(), ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="train.steps must be an integer"):
        apply_overrides(TrainConfig(), ["train.steps=many"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(TrainConfig(), ["optim.lr"])
    with pytest.raises(ConfigError, match="did you mean 'train.steps'"):
        apply_overrides(TrainConfig(), ["steps=3"])


@pytest.mark.parametrize(
    "key, suggested",
    [
        ("train.lr", "optim.lr"),  # a key of another section, by its name
        ("lr", "optim.lr"),
        ("model.lr", "optim.lr"),
        ("train.cache_dir", "data.cache_dir"),
        ("optim.learning_rate", "optim.lr"),
        ("data.frame", "data.frames"),  # a near name, in the section given
        ("train.batchsize", "train.batch_size"),
        ("loss.lambda_trak", "loss.lambda_track"),
    ],
)
def test_did_you_mean_searches_every_section(key, suggested):
    with pytest.raises(ConfigError, match=f"unknown config key '{key}' \\(did you mean '{suggested}'\\?\\)"):
        apply_overrides(TrainConfig(), [f"{key}=1"])
    if "." in key:  # the same hint for the key in a config file
        section, _, name = key.partition(".")
        with pytest.raises(ConfigError, match=f"did you mean '{suggested}'"):
            from_dict({section: {name: 1}})


@pytest.mark.parametrize(
    "override, needle",
    [
        ("model.preset=tinny", "did you mean 'tiny'"),
        ("optim.schedule=linear", "optim.schedule must be one of"),
        ("optim.train_groups=['self_attn']", "did you mean 'self_attention'"),
        ("train.batch_size=3", "multiple of train.accumulate"),
        ("data.reverse_prob=1.5", "data.reverse_prob must be in [0, 1]"),
        ("optim.lr=inf", "optim.lr must be a finite number"),
    ],
)
def test_validate_rejects(override, needle):
    cfg = apply_overrides(TrainConfig(), [override] + (["train.accumulate=2"] if "batch" in override else []))
    with pytest.raises(ConfigError) as err:
        cfg.validate()
    assert needle in str(err.value)


def test_toml_round_trip_of_examples():
    for path in EXAMPLES:
        cfg = load_config(path)
        again = from_dict(__import__("tomllib").loads(to_toml(cfg)))
        assert again == cfg and not diff_keys(cfg, again)


@settings(max_examples=30, deadline=None)
@given(
    lr=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False),
    name=st.text(min_size=0, max_size=20),
    paths=st.lists(st.text(max_size=12), max_size=3),
    steps=st.integers(min_value=1, max_value=10**9),
    flag=st.booleans(),
)
def test_toml_round_trip_property(lr, name, paths, steps, flag):
    import tomllib

    cfg = TrainConfig()
    cfg.optim.lr, cfg.model.init, cfg.data.paths, cfg.train.steps, cfg.loss.corr = lr, name, paths, steps, flag
    assert from_dict(tomllib.loads(to_toml(cfg))) == cfg


def test_every_key_is_reachable():
    cfg = TrainConfig()
    assert len(all_keys()) == len(set(all_keys())) > 40
    for key in all_keys():
        cfg.get(key)


def _reference_lr(step, warmup, total, min_ratio, schedule):
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * (1 + math.cos(math.pi * t)) / 2


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_schedule(schedule):
    cfg = apply_overrides(TrainConfig(), [f"optim.schedule={schedule}", "optim.warmup_steps=5", "train.steps=40",
                                          "optim.min_lr_ratio=0.1"])  # fmt: skip
    values = [lr_factor(s, cfg) for s in range(45)]
    assert values == pytest.approx([_reference_lr(s, 5, 40, 0.1, schedule) for s in range(45)])
    assert values[0] == pytest.approx(0.2) and values[4] == 1.0
    if schedule == "cosine":
        assert values[40] == pytest.approx(0.1) and values[44] == pytest.approx(0.1)
        cfg.optim.decay_steps = 80  # the cosine's length does not depend on train.steps then
        assert lr_factor(40, cfg) == pytest.approx(_reference_lr(40, 5, 80, 0.1, "cosine"))


def test_model_overrides():
    cfg = apply_overrides(TrainConfig(), ["model.tap_layer=2", "model.tracking_head=false", "data.frames=9",
                                          "model.head_iterations=2"])  # fmt: skip
    mc = resolve_model_config(cfg)
    assert mc.tap_layer == 2 and not mc.use_tracking_head and mc.video.frames == 9
    assert mc.tracking_head["iterations"] == 2
    with pytest.raises(ConfigError, match="tap_layer 7"):
        resolve_model_config(apply_overrides(TrainConfig(), ["model.tap_layer=7"]))
    with pytest.raises(ConfigError, match="4k\\+1"):
        resolve_model_config(apply_overrides(TrainConfig(), ["data.frames=10"]))


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_config_is_refused(tmp_path, text):
    path = tmp_path / "empty.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="empty.toml: config file is empty; leave out --config"):
        load_config(path)


def test_gradient_checkpointing_defaults_to_the_models_own_setting(tmp_path):
    """On by default for wan2.1-1.3b, off for the small presets; true/false override it."""
    assert TrainConfig().model.gradient_checkpointing == "auto"

    def resolved(*overrides):
        return resolve_model_config(apply_overrides(TrainConfig(), list(overrides)).validate()).gradient_checkpointing

    assert resolved("model.preset=wan2.1-1.3b") is True
    assert resolved("model.preset=tiny") is False
    assert resolved("model.preset=wan2.1-1.3b", "model.gradient_checkpointing=false") is False
    assert resolved("model.preset=tiny", "model.gradient_checkpointing=true") is True
    assert resolved("model.preset=tiny", "model.gradient_checkpointing=auto") is False
    with pytest.raises(ConfigError, match='true, false or "auto"'):
        apply_overrides(TrainConfig(), ["model.gradient_checkpointing=yes"]).validate()
    with pytest.raises(ConfigError, match="model.gradient_checkpointing must be true or false or a string"):
        apply_overrides(TrainConfig(), ["model.gradient_checkpointing=3"])
    # Both spellings survive the run directory's config.toml.
    for value in ("auto", True, False):
        cfg = TrainConfig()
        cfg.model.gradient_checkpointing = value
        path = tmp_path / "c.toml"
        path.write_text(to_toml(cfg))
        assert load_config(path).model.gradient_checkpointing == value


def test_tap_layer_unset_is_the_presets_and_round_trips(tmp_path):
    cfg = TrainConfig()
    assert cfg.model.tap_layer is None
    assert resolve_model_config(cfg).tap_layer == resolve_model_config(apply_overrides(TrainConfig(), [])).tap_layer
    text = to_toml(cfg)
    assert "# tap_layer: unset" in text and "tap_layer =" not in text
    assert load_config(_write(tmp_path / "a.toml", text)) == cfg
    assert apply_overrides(TrainConfig(), ["model.tap_layer=0"]).validate().model.tap_layer == 0
    with pytest.raises(ConfigError, match="model.tap_layer must be >= 0 \\(leave it out for the preset's\\)"):
        apply_overrides(TrainConfig(), ["model.tap_layer=-1"]).validate()
    with pytest.raises(ConfigError, match="model.tap_layer must be an integer, got 'x'"):
        apply_overrides(TrainConfig(), ["model.tap_layer=x"])
    with pytest.raises(ConfigError, match="did you mean 'model.tap_layer'"):
        apply_overrides(TrainConfig(), ["model.layer=2"])


def test_old_key_model_layer_still_loads(tmp_path):
    """Run directories written before the rename hold `layer = -1` (the preset's) or `layer = N`."""
    assert load_config(_write(tmp_path / "a.toml", "[model]\nlayer = -1\n")).model.tap_layer is None
    assert load_config(_write(tmp_path / "b.toml", "[model]\nlayer = 3\n")).model.tap_layer == 3


def _write(path, text):
    path.write_text(text)
    return path
