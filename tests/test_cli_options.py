"""The command line's shape: one table of commands, options generated from the config
dataclasses (one name per setting, the old spellings as aliases), help text with defaults on
every option, separate names for input and output formats, and the newcomer's checks
(generate --beam with --num-samples, --stop '', download python-docs, the dataset lists)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys

import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit import cli
from rnnkit.cli import COMMANDS, build_parser, main
from rnnkit.config import ModelConfig, SampleConfig, TokenizerConfig, TrainConfig, field_default
from rnnkit.data import KNOWN_DATASETS
from rnnkit.inference.generate import beam_search, beam_search_n


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def help_entries(parser: argparse.ArgumentParser, monkeypatch) -> dict[str, str]:
    """{invocation as shown: its help on one line}, from the rendered --help."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: one entry is one or two lines
    entries: dict[str, str] = {}
    current = None
    for line in parser.format_help().splitlines():
        m = re.match(r"  (-\S+(?: \S+)?(?: \[\S+ \.\.\.\])?)(?:\s{2,}(.*))?$", line)  # --cutoffs N [N ...]
        if m:
            current = m.group(1)
            assert current not in entries, f"{current} listed twice"
            entries[current] = m.group(2) or ""
        elif current and line.startswith(" " * 8):
            entries[current] = f"{entries[current]} {line.strip()}".strip()
        else:
            current = None
    return entries


def shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# ---------------------------------------------------------------------------- the table of commands


def test_one_table_names_every_command(capsys):
    assert list(COMMANDS) == ["train", "eval", "score", "rescore", "lattice", "mix-weight", "generate",
                              "predict", "serve", "export", "plot", "download", "cache", "gradcheck", "analyze",
                              "demo"]
    assert list(subparsers()) == list(COMMANDS)
    for name, module in COMMANDS.items():
        assert callable(module.add_parser) and callable(module.run), name
        assert module.__name__ == f"rnnkit.cli.{'evaluate' if name == 'eval' else name.replace('-', '_')}"
        assert module.__doc__.strip(), name
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.findall(r"^    ([\w-]+)", capsys.readouterr().out, re.MULTILINE)
    assert listed == list(COMMANDS)


def test_help_imports_no_torch_numpy_model_or_matplotlib():
    code = ("import sys, rnnkit.cli; rnnkit.cli.build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib') "
            "or m.startswith(('rnnkit.numpy_engine', 'rnnkit.torch_engine'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------- help text everywhere


def test_every_option_has_help_and_its_default(monkeypatch):
    for name, parser in subparsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), (name, action.dest)
            takes_value = action.nargs != 0
            if action.option_strings and takes_value and action.default is not None:
                assert "default" in action.help, (name, action.dest, action.help)


TRAIN_FIELDS = [(cls, f) for cls in (ModelConfig, TokenizerConfig, TrainConfig) for f in dataclasses.fields(cls)
                if f.name != "vocab_size"]


def test_train_help_lists_each_field_once_with_its_dataclass_default(monkeypatch):
    entries = help_entries(subparsers()["train"], monkeypatch)
    by_flag = {inv.split()[0].split("/")[0]: text for inv, text in entries.items()}
    for cls, f in TRAIN_FIELDS:
        text = by_flag.pop(flag(f.name))
        assert f"(default: {shown(field_default(f))})" in text, (f.name, text)
        assert text.startswith(f.metadata["help"][:30]), f.name
        for alias in f.metadata["aliases"]:
            assert alias in text and alias not in by_flag, alias
    assert sorted(by_flag) == ["--help", "--out", "--overwrite", "--quiet", "--recipe", "--resume", "--valid"]


def test_train_options_not_given_stay_none():
    args = build_parser().parse_args(["train", "c.txt", "--out", "o"])
    generated = {k: v for k, v in vars(args).items() if "." in k}
    assert len(generated) == len(TRAIN_FIELDS) and set(generated.values()) == {None}


def test_generate_help_from_sample_config(monkeypatch):
    entries = help_entries(subparsers()["generate"], monkeypatch)
    by_flag = {inv.split()[0].split("/")[0]: text for inv, text in entries.items()}
    for f in dataclasses.fields(SampleConfig):
        text = by_flag[flag(f.name)]
        assert text.startswith(f.metadata["help"][:30]), f.name
    assert "(default: 50 words / 500 characters" in by_flag["--max-len"]
    assert "(also -n)" in by_flag["--num-samples"]


def test_dataset_lists_of_train_and_download_agree(monkeypatch):
    def datasets(command: str) -> list[str]:
        monkeypatch.setenv("COLUMNS", "1000")
        text = subparsers()[command].format_help()
        return text[text.index("known datasets"):].splitlines()

    lines = datasets("train")
    assert lines == datasets("download")
    for name, spec in KNOWN_DATASETS.items():
        i = next(k for k, line in enumerate(lines) if line.split()[:1] == [name])
        where = lines[i + 1]
        if spec.builtin:
            assert "built in" in where
        elif all(f.url for f in spec.files.values()):
            assert f"public download: rnnkit download {name}" in where
        else:
            assert "no public download" in where


# ---------------------------------------------------------------------------- old spellings


ALIASES = [
    (["train", "c", "--out", "o", "--hidden-dim", "64"], ["train", "c", "--out", "o", "--hidden", "64"]),
    (["train", "c", "--out", "o", "--embed-dim", "64"], ["train", "c", "--out", "o", "--embed", "64"]),
    (["train", "c", "--out", "o", "--num-layers", "2"], ["train", "c", "--out", "o", "--layers", "2"]),
    (["train", "c", "--out", "o", "--tie-weights"], ["train", "c", "--out", "o", "--tie"]),
    (["train", "c", "--out", "o", "--no-tie-weights"], ["train", "c", "--out", "o", "--no-tie"]),
    (["train", "c", "--out", "o", "--corpus-format", "csv"], ["train", "c", "--out", "o", "--format", "csv"]),
    (["eval", "m", "f", "--corpus-format", "ptb"], ["eval", "m", "f", "--format", "ptb"]),
    (["score", "m", "--output-format", "jsonl"], ["score", "m", "--format", "jsonl"]),
    (["rescore", "m", "nb", "--nbest-format", "kaldi"], ["rescore", "m", "nb", "--format", "kaldi"]),
    (["generate", "m", "--num-samples", "3"], ["generate", "m", "-n", "3"]),
    (["gradcheck", "--num-layers", "2"], ["gradcheck", "--layers", "2"]),
    (["gradcheck", "--tie-weights"], ["gradcheck", "--tied"]),
    (["gradcheck", "--tie-weights"], ["gradcheck", "--tie"]),
]


@pytest.mark.parametrize("new,old", ALIASES, ids=[old[-2] if old[-1].isalnum() else old[-1] for _, old in ALIASES])
def test_old_spelling_parses_to_the_same_value(new, old):
    a, b = build_parser().parse_args(new), build_parser().parse_args(old)
    assert a == b
    assert a != build_parser().parse_args(new[:-2] if new[-1].isalnum() else new[:-1])  # the option did something


def test_score_and_rescore_formats_have_separate_names():
    args = build_parser().parse_args(["score", "m", "--output-format", "srilm"])
    assert args.output_format == "srilm" and not hasattr(args, "format")
    args = build_parser().parse_args(["rescore", "m", "nb", "--nbest-format", "srilm"])
    assert args.nbest_format == "srilm"
    args = build_parser().parse_args(["train", "c", "--out", "o", "--corpus-format", "text"])
    assert getattr(args, "train.corpus_format") == "text"


# ---------------------------------------------------------------------------- what a newcomer meets


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    return rc, *capsys.readouterr()


def one_line_error(rc: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    return lines[0]


def test_generate_beam_prints_the_m_best_best_first(tiny_model, capsys):
    lm = rnnkit.load(tiny_model)
    prompt = lm.vocab.encode(lm.tokenize("the cat"))
    cfg = SampleConfig(beam=4, max_len=8, length_penalty=0.5)
    best = beam_search_n(lm.model, lm.vocab, prompt, cfg, 3)
    scores = [h.score(cfg.length_penalty) for h in best]
    assert len(best) == 3 and scores == sorted(scores, reverse=True)
    assert best[0].ids == beam_search(lm.model, lm.vocab, prompt, cfg).ids
    assert len({tuple(h.ids) for h in best}) == 3
    rc, out, err = run(capsys, "generate", tiny_model, "--prompt", "the cat", "--beam", "4", "--num-samples", "3",
                       "--max-len", "8", "--length-penalty", "0.5")
    assert rc == 0, err
    want = [lm.tokenizer.detokenize(lm.tokenize("the cat") + lm.vocab.decode(h.ids)) for h in best]
    assert out.splitlines() == want


def test_generate_more_samples_than_the_beam_is_refused(tiny_model, capsys):
    rc, out, err = run(capsys, "generate", tiny_model, "--beam", "2", "--num-samples", "3")
    line = one_line_error(rc, err)
    assert "--num-samples 3" in line and "--beam 2" in line and out == ""


def test_generate_empty_stop_is_refused(tiny_model, capsys):
    rc, out, err = run(capsys, "generate", tiny_model, "--stop", "")
    assert "--stop ''" in one_line_error(rc, err) and out == ""


def test_generate_max_len_default_depends_on_the_level(tmp_path, capsys):
    """50 tokens for a word model, 500 for a character model: --min-len one above is refused."""
    char, word = make_model_dir(tmp_path / "c", level="char"), make_model_dir(tmp_path / "w")
    rc, out, err = run(capsys, "generate", char, "--seed", "1")
    assert rc == 0, err
    assert len(out[:-1]) == 500  # characters, the line breaks of </s> included
    for model, limit in ((char, 500), (word, 50)):
        rc, out, err = run(capsys, "generate", model, "--min-len", limit + 1)
        assert f"--min-len must be in 0..max-len ({limit})" in one_line_error(rc, err)
    rc, out, err = run(capsys, "generate", word, "--seed", "1", "--min-len", "50")
    assert rc == 0, err
    assert out == rnnkit.load(word).generate(seed=1, min_len=50, max_len=50) + "\n"


def test_download_python_docs_needs_no_download(capsys, tmp_path):
    rc, out, err = run(capsys, "download", "python-docs", "--dest", tmp_path)
    assert rc == 0, err
    assert "built in" in out and "nothing to download" in out
    assert list(tmp_path.iterdir()) == []


def test_download_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["download", "imagenet"])
    assert e.value.code == 2 and "python-docs" in capsys.readouterr().err


def test_recipe_values_have_strict_types(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat .\n" * 20, encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text('[tokenizer]\nlowercase = "no"\n', encoding="utf-8")
    rc, _, err = run(capsys, "train", corpus, "--out", tmp_path / "m", "--recipe", recipe, "--quiet")
    line = one_line_error(rc, err)
    assert "lowercase must be true or false" in line and str(recipe) in line
    recipe.write_text('[model]\nvocab_size = 100\n', encoding="utf-8")
    rc, _, err = run(capsys, "train", corpus, "--out", tmp_path / "m", "--recipe", recipe, "--quiet")
    assert "vocab_size comes from the corpus" in one_line_error(rc, err)


def test_gradcheck_options_come_from_model_config(capsys):
    parser = subparsers()["gradcheck"]
    cell = next(a for a in parser._actions if a.dest == "cell")
    assert tuple(cell.choices) == dataclasses.fields(ModelConfig)[1].metadata["choices"]
    rc, out, err = run(capsys, "gradcheck", "--cell", "gru", "--nonlinearity", "relu")
    assert "relu applies only to cell rnn" in one_line_error(rc, err)
    rc, out, _ = run(capsys, "gradcheck", "--cell", "rnn", "--tied", "--layers", "2")
    assert rc == 0 and "rnn tanh, 2 layer(s)" in out and "decoder.weight" not in out


def test_train_writes_config_json_under_the_field_names(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat .\nthe dog sat .\n" * 20, encoding="utf-8")
    out = tmp_path / "m"
    rc, _, err = run(capsys, "train", corpus, "--out", out, "--hidden-dim", "6", "--embed", "6", "--tie",
                     "--num-layers", "2", "--max-steps", "2", "--quiet")
    assert rc == 0, err
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["hidden_dim"], model["embed_dim"], model["num_layers"], model["tie_weights"]) == (6, 6, 2, True)


def test_cli_package_docstring_names_the_table():
    assert "COMMANDS" in cli.__doc__
