"""Fault injection for strict input types (issue 11, item 5): each bad value in a recipe,
config.json, vocab.json, the safetensors header, an n-best list, a CSV corpus or a sampling
option ends with a non-zero exit, one `rnnkit: error:` line naming the file (and line) or the
option, no traceback, and every file that was there before byte-identical."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conftest import TINY_CORPUS, make_model_dir
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from rnnkit import params as params_module
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import ConfigError, InputError
from rnnkit.params import GIB, check_memory, memory_needed, param_shapes


@pytest.fixture
def work(tmp_path) -> Path:
    """A directory with a tiny model and a small corpus (the files a fault must leave alone)."""
    make_model_dir(tmp_path / "model")
    (tmp_path / "corpus.txt").write_text("\n".join(TINY_CORPUS * 20) + "\n", encoding="utf-8")
    return tmp_path


def refused(work: Path, argv: list[str], *names: str) -> str:
    """Run `rnnkit ARGV` in `work`; assert the one-line error naming `names` and no file changed."""
    before = snapshot(work)
    rc, _, err = run_cli([a.replace("WORK", str(work)) for a in argv])
    line = assert_one_line_error(rc, err, *names)
    assert_unchanged(work, before)
    return line


def train_argv(*extra: str) -> list[str]:
    return ["train", "WORK/corpus.txt", "--out", "WORK/out", "--quiet", "--max-steps", "1", *extra]


# ---------------------------------------------------------------- recipes

@pytest.mark.parametrize("toml,names", [
    ('[tokenizer]\nlowercase = "no"\n', ["[tokenizer]", "lowercase", "true or false", "'no'"]),
    ('[train]\nclip = "5"\n', ["[train]", "clip", "a finite number", "'5'"]),
    ('[train]\nseed = -1\n', ["seed", "-1"]),
    ('[train]\nlr = nan\n', ["[train]", "lr", "finite"]),
    ('[model]\ncell = "transformer"\n', ["[model]", "cell must be one of"]),
    ('[model]\ncolour = "red"\n', ["[model]", "unknown key", "colour"]),
    ('[optimiser]\nlr = 1\n', ["unknown key", "optimiser"]),
    ('model = 3\n', ["[model] must be a table"]),
    ('corpus = 3\n', ["corpus must be a non-empty string", "int 3"]),
    ('target = { metric = "test_ppl", max = inf }\n', ["[target]", "max must be a finite number"]),
    ('[train\nclip = 1\n', ["invalid TOML"]),
    ('x = ' + '[' * 5000 + ']' * 5000 + '\n', ["invalid TOML"]),
])
def test_bad_recipe_values(work, toml, names):
    (work / "r.toml").write_text(toml, encoding="utf-8")
    refused(work, train_argv("--recipe", "WORK/r.toml"), str(work / "r.toml"), *names)


def test_the_shipped_recipes_still_load():
    from rnnkit.recipes import load_recipe, names

    for name in names():
        assert load_recipe(name)["_path"] == f"recipe {name}"


# ---------------------------------------------------------------- config.json

def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(data) or data), encoding="utf-8")


@pytest.mark.parametrize("change,names", [
    (lambda d: d["tokenizer"].update(lowercase="no"), ["[tokenizer]", "lowercase must be true or false"]),
    (lambda d: d["model"].update(hidden_dim=8.0), ["[model]", "hidden_dim must be an integer"]),
    (lambda d: d["model"].update(dropout=float("nan")), ["[model]", "dropout must be a finite number"]),
    (lambda d: d.update(extra=[1, 2]), ['"extra" must be a JSON object', "list"]),
    (lambda d: d.update(extra="best"), ['"extra" must be a JSON object', "str"]),
    (lambda d: d.update(format_version=True), ["format_version True is not supported"]),
    (lambda d: d.update(format_version="1"), ["format_version '1' is not supported"]),
    (lambda d: d.update(rnnkit_version=1), ['"rnnkit_version" must be a string']),
    (lambda d: d.update(model=[]), ['missing the "model" section']),
    (lambda d: d["model"].update({"a\nb": 1}), ["[model]", "unknown key", "'a\\nb'"]),
])
def test_bad_config_json(work, change, names):
    edit_json(work / "model" / "config.json", change)
    refused(work, ["generate", "WORK/model", "--seed", "1"], "config.json", *names)


def test_huge_integer_and_deep_nesting_in_config_json(work):
    path = work / "model" / "config.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"hidden_dim": 8', '"hidden_dim": ' + "9" * 5000), encoding="utf-8")
    refused(work, ["generate", "WORK/model"], "config.json", "invalid JSON")
    path.write_text(text.replace('"hidden_dim": 8', '"hidden_dim": ' + "[" * 10**5 + "]" * 10**5), encoding="utf-8")
    refused(work, ["generate", "WORK/model"], "config.json", "invalid JSON")


# ---------------------------------------------------------------- vocab.json

@pytest.mark.parametrize("change,names", [
    (lambda v: {"tokens": v}, ["expected a JSON array", "dict"]),
    (lambda v: v[:3] + [v[4], v[4]] + v[5:], ["duplicates entry"]),
    (lambda v: v[:3] + [7] + v[4:], ["entry 3 is int 7, not a string"]),
    (lambda v: v[:3] + [""] + v[4:], ["entry 3 is an empty string"]),
    (lambda v: v[:3] + ["a\ud800"] + v[4:], ["entry 3", "lone surrogate"]),
    (lambda v: v[1:] + v[:1], ["must start with"]),
    (lambda v: v + ["extra"], ["but config.json says vocab_size"]),
    (lambda v: v[:-1], ["but config.json says vocab_size"]),
])
def test_bad_vocab_json(work, change, names):
    path = work / "model" / "vocab.json"
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    refused(work, ["score", "WORK/model", "WORK/corpus.txt"], "vocab.json", *names)


# ---------------------------------------------------------------- the safetensors header

def rewrite_header(path: Path, change) -> None:
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    new = change(header)
    raw = new if isinstance(new, bytes) else json.dumps(header if new is None else new).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


@pytest.mark.parametrize("change,names", [
    (lambda h: b"{not json", ["not a valid safetensors file"]),
    (lambda h: [1, 2], ["not a valid safetensors file"]),
    (lambda h: h["embedding.weight"].update(data_offsets=[0, 10**12]), ["not a valid safetensors file"]),
    (lambda h: h["embedding.weight"].update(data_offsets=[8, 0]), ["not a valid safetensors file"]),
    (lambda h: h["embedding.weight"].update(dtype="XX"), ["not a valid safetensors file"]),
    (lambda h: h["embedding.weight"].update(shape=[-1]), ["not a valid safetensors file"]),
    (lambda h: h["decoder.bias"].update(dtype="I32"), ["decoder.bias is int32, expected float32"]),
    (lambda h: h["decoder.bias"].update(shape=[2, 13]), ["decoder.bias has shape (2, 13)"]),
    (lambda h: h.pop("decoder.bias") and None, ["not a valid safetensors file"]),  # its bytes are left over
])
def test_bad_safetensors_header(work, change, names):
    rewrite_header(work / "model" / "model.safetensors", change)
    refused(work, ["generate", "WORK/model"], "model.safetensors", *names)


def test_safetensors_length_prefix_beyond_the_file(work):
    path = work / "model" / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**63) + path.read_bytes()[8:])
    refused(work, ["generate", "WORK/model"], "model.safetensors", "not a valid safetensors file")


# ---------------------------------------------------------------- n-best scores

@pytest.mark.parametrize("score", ["nan", "NaN", "inf", "-Infinity", "1e999", "1_0", "0x10", "--1"])
def test_nbest_acoustic_score_must_be_a_finite_number(work, score):
    (work / "nbest.txt").write_text(f"-10.5 0 3 the cat sat\n{score} 0 3 the dog sat\n", encoding="utf-8")
    line = refused(work, ["rescore", "WORK/model", "WORK/nbest.txt", "--nbest-format", "srilm"],
                   f"{work / 'nbest.txt'}:2:", "acoustic score", "not a finite number")
    assert repr(score) in line


def test_nbest_lscore_is_replaced_so_minus_inf_is_read(work):
    (work / "nbest.txt").write_text("-10.5 -inf 3 the cat sat\n-1.25e1 -3 3 the dog sat\n", encoding="utf-8")
    rc, out, err = run_cli(["rescore", str(work / "model"), str(work / "nbest.txt"), "--nbest-format", "srilm"])
    assert rc == 0, err
    assert sorted(row.split("\t")[3] for row in out.splitlines()) == ["-10.500000", "-12.500000"]


def test_nbest_total_that_overflows_is_refused(work):
    (work / "nbest.txt").write_text("0 0 3 the cat sat\n", encoding="utf-8")
    refused(work, ["rescore", "WORK/model", "WORK/nbest.txt", "--nbest-format", "srilm", "--word-penalty", "1e308"],
            "nbest.txt:1", "not finite", "--word-penalty")


# ---------------------------------------------------------------- sampling options and seeds

def generated(work: Path, *options: str) -> tuple[str, str]:
    rc, out, err = run_cli(["generate", str(work / "model"), "--max-len", "12", *options])
    assert rc == 0, err
    return out, err


@pytest.mark.parametrize("temperature", ["1e-308", "1e-320", "5e-324"])
def test_a_tiny_temperature_is_greedy_exactly(work, temperature, recwarn):
    out, err = generated(work, "--temperature", temperature, "--seed", "3", "--num-samples", "2")
    greedy, _ = generated(work, "--greedy")
    assert out.splitlines() == greedy.splitlines() * 2 and err == ""
    assert "<unk>" not in out and not [w for w in recwarn if "overflow" in str(w.message)]


@pytest.mark.parametrize("argv,names", [
    (["--seed", "-1"], ["--seed must be in [0, 4294967295]", "-1"]),
    (["--seed", str(2**32)], ["--seed", str(2**32)]),
    (["--temperature", "0"], ["--temperature"]),
    (["--temperature", "1001"], ["--temperature"]),
    (["--top-k", "-1"], ["--top-k"]),
    (["--top-p", "0"], ["--top-p"]),
    (["--top-p", "1.5"], ["--top-p"]),
    (["--beam", "2", "--length-penalty", "1e308"], ["--length-penalty"]),
])
def test_bad_sampling_options(work, argv, names):
    refused(work, ["generate", "WORK/model", *argv], *names)


@pytest.mark.parametrize("argv,names", [
    (train_argv("--seed", "-1"), ["seed must be in [0, 4294967295]", "-1"]),
    (train_argv("--seed", str(2**32)), ["seed", str(2**32)]),
    (["gradcheck", "--seed", "-1"], ["seed", "-1"]),
])
def test_seeds_out_of_range(work, argv, names):
    refused(work, argv, *names)


# ---------------------------------------------------------------- memory

def test_a_model_too_large_for_memory_is_refused_before_allocating(work, monkeypatch):
    monkeypatch.setattr(params_module, "available_memory", lambda: 21 * GIB)
    line = refused(work, train_argv("--hidden-dim", "100000"), "--hidden-dim 100000", "GiB",
                   "21.0 GiB available")
    assert "the model would need" in line


@pytest.mark.parametrize("options,culprit", [
    ({"hidden_dim": 30000, "num_layers": 3}, "--hidden-dim 30000 with --num-layers 3"),
    ({"vocab_size": 5_000_000, "embed_dim": 2000, "hidden_dim": 8}, "vocabulary 5,000,000 x --embed-dim 2000"),
    ({"vocab_size": 5_000_000, "embed_dim": 8, "hidden_dim": 2000}, "vocabulary 5,000,000 x --hidden-dim 2000"),
])
def test_the_message_names_what_makes_the_model_large(options, culprit):
    cfg = ModelConfig(**{"vocab_size": 100, **options})
    with pytest.raises(ConfigError, match=culprit):
        check_memory(cfg, available=GIB)


def test_training_counts_optimizer_state_and_activations():
    cfg = ModelConfig(vocab_size=1000, embed_dim=64, hidden_dim=64)
    n = sum(s[0] * (s[1] if len(s) > 1 else 1) for s in param_shapes(cfg).values())
    need, what, _ = memory_needed(cfg, copies=2, fresh=False)
    assert need == 2 * 4 * n and what == "parameters"
    sgd, _, _ = memory_needed(cfg, copies=2, fresh=False, train=TrainConfig(optimizer="sgd"))
    adam, what, _ = memory_needed(cfg, copies=2, fresh=False, train=TrainConfig(optimizer="adam"))
    assert adam - sgd == 2 * 4 * n and "optimizer state" in what
    check_memory(cfg, copies=2, fresh=False, available=need)  # exactly enough
    with pytest.raises(ConfigError, match="optimizer state"):
        check_memory(cfg, copies=2, fresh=False, train=TrainConfig(optimizer="adam"), available=sgd)
    with pytest.raises(ConfigError, match=r"--batch-size 100000 x --seq-len 1000 \(one step's activations\)"):
        check_memory(cfg, train=TrainConfig(batch_size=100_000, seq_len=1000), available=64 * GIB)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_build_model_checks_memory_before_the_engine_allocates(engine, monkeypatch):
    from rnnkit import engines

    if engine == "torch":
        pytest.importorskip("torch")
    mod = engines.get_engine(engine)
    monkeypatch.setattr(mod, "RNNLM", lambda *a, **k: pytest.fail("the engine was asked to allocate"))
    monkeypatch.setattr(params_module, "available_memory", lambda: 1 << 20)
    cfg = ModelConfig(vocab_size=50, embed_dim=256, hidden_dim=256)
    with pytest.raises(ConfigError, match=r"--hidden-dim 256: the model would need .* MiB \(parameters\); "
                                          r"this machine has 1.0 MiB available"):
        engines.build_model(engine, cfg, device="cpu")
    with pytest.raises(ConfigError, match="seed"):
        engines.build_model(engine, ModelConfig(vocab_size=5, hidden_dim=4, embed_dim=4), seed=-1, device="cpu")


def test_init_params_checks_the_seed_and_the_memory(monkeypatch):
    from rnnkit.params import init_params

    cfg = ModelConfig(vocab_size=5, hidden_dim=4, embed_dim=4)
    with pytest.raises(ConfigError, match=r"seed: must be an integer in \[0, 4294967295\], got -1"):
        init_params(cfg, seed=-1)
    assert init_params(cfg, seed=2**32 - 1)["embedding.weight"].shape == (5, 4)
    monkeypatch.setattr(params_module, "available_memory", lambda: 1000)
    with pytest.raises(ConfigError, match="available"):
        init_params(cfg)


def test_no_memory_figure_no_check(monkeypatch):
    monkeypatch.setattr(params_module, "available_memory", lambda: None)
    check_memory(ModelConfig(vocab_size=10, hidden_dim=100_000))  # nothing to compare with: no refusal


# ---------------------------------------------------------------- CSV

def test_csv_with_an_unclosed_quote_names_the_line_it_opened(work):
    rows = ["id,body", '1,"the cat sat on the mat', *[f"{i},the dog sat on the log ." for i in range(2, 40)]]
    (work / "c.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    refused(work, ["train", "WORK/c.csv", "--out", "WORK/out", "--quiet", "--valid", "WORK/corpus.txt"],
            str(work / "c.csv"), "unclosed quote", "line 2")


def test_csv_quotes_that_close_are_read_as_before(work):
    from rnnkit.data.readers import parse_corpus

    text = 'id,body\n1,"say ""hi"" there"\n2,"two\nlines"\n3,5" screen\n4,"a"b\n'
    assert parse_corpus(text, "csv") == ['say "hi" there', "two lines", '5" screen', "ab"]
    with pytest.raises(InputError, match="opens at line 1"):
        parse_corpus('"id,body\n1,x\n', "csv")


def test_the_known_truncated_reddit_sample_is_still_read_but_an_edited_copy_is_not(shared_data, work):
    from rnnkit.data import read_sentences

    sample = shared_data / "reddit" / "reddit-comments-2015-08-sample.csv"
    if not sample.is_file():
        pytest.skip("reddit sample not in the shared data")
    assert read_sentences(str(sample)) == read_sentences("reddit-sample:all")  # its last comment is cut in quotes
    (work / "edited.csv").write_bytes(sample.read_bytes().replace(b"Dota", b"DOTA"))
    with pytest.raises(InputError, match=r"edited.csv: unclosed quote: the quoted field that opens at line \d+"):
        read_sentences(str(work / "edited.csv"))
