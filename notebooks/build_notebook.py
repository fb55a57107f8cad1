"""Build notebooks/rnn-tutorial.ipynb from the cells below, execute it, and save it with its outputs.

    python notebooks/build_notebook.py                 # write and execute (under a minute on 2 cores)
    python notebooks/build_notebook.py --no-execute    # write the cells only, no outputs

The cells live here, as plain strings, so that a change to the notebook is a reviewable diff of
this file; tests/test_notebook.py re-executes the notebook and checks that its cells are the
ones `build()` makes. The notebook runs in a temporary directory and writes only there (the
models it trains, its figures, the corpus' id cache), never into the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "rnn-tutorial.ipynb"
KERNEL = "python3"
CELL_TIMEOUT = 300  # seconds per cell; the whole notebook takes well under a minute on 2 cores

KERNELSPEC = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text: str) -> tuple[str, str]:
    return ("markdown", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


CELLS = [
    md(r"""
# Recurrent neural networks, from scratch to PyTorch, with rnnkit

This notebook walks the lessons of the WildML tutorial series on recurrent neural networks
with rnnkit's own code:

1. a feed-forward network from scratch, on the two moons;
2. the tutorial's RNN language model, from scratch (`rnnkit.numpy_engine.tutorial`, the readable twin
   of the fast engine): forward pass, loss, backpropagation through time, the gradient check, SGD;
3. the same network vectorized (`rnnkit.numpy_engine`) and its gradient check, for RNN, GRU and LSTM;
4. training on the Reddit comments, then scoring sentences and generating text;
5. the vanishing gradient, and how far back a model remembers, for RNN vs GRU vs LSTM;
6. the same model on the torch engine.

Everything is small, so that the whole notebook runs in well under a minute on two CPU cores. Everything
it writes (models, figures, the corpus' id cache) goes to a temporary directory. It is built by
`notebooks/build_notebook.py`, and `tests/test_notebook.py` re-executes it.
"""),
    code(r"""
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from IPython.display import Image, display

import rnnkit
from rnnkit.data.datasets import resolve_dataset

work = Path(tempfile.mkdtemp(prefix="rnnkit-tutorial-"))  # everything this notebook writes goes here
os.environ.setdefault("RNNKIT_CACHE", str(work / "id-cache"))  # the corpus' id cache too
started = time.perf_counter()

# The tutorial's 212 Reddit comments live in ../shared/data (or $RNNKIT_DATA); a fresh clone
# without them falls back to the text that ships with Python.
try:
    resolve_dataset("reddit-sample")
    CORPUS = "reddit-sample"
except rnnkit.RnnkitError:
    CORPUS = "python-docs"
print(f"rnnkit {rnnkit.__version__}, corpus {CORPUS}")
"""),
    md(r"""
## 1. A neural network from scratch

Before recurrence, the series builds a classifier for the *two moons*: 2 inputs, one hidden layer
of tanh units, a softmax over the 2 classes, trained by full-batch gradient descent with L2
regularisation.

$$z_1 = x W_1 + b_1, \quad a_1 = \tanh(z_1), \quad z_2 = a_1 W_2 + b_2, \quad \hat y = \mathrm{softmax}(z_2)$$

$$L = -\sum_n \ln \hat y_{n, y_n} + \tfrac{\lambda}{2}\left(\lVert W_1\rVert^2 + \lVert W_2\rVert^2\right)$$

Backpropagation is the chain rule, layer by layer: $\delta_3 = \hat y - \mathrm{onehot}(y)$,
$\partial L/\partial W_2 = a_1^\top \delta_3$, $\delta_2 = \delta_3 W_2^\top \odot (1 - a_1^2)$,
$\partial L/\partial W_1 = x^\top \delta_2$. Logistic regression, the same network without the
hidden layer, can only draw a straight line between the classes.
"""),
    code(r"""
from rnnkit.analysis import feedforward as ff
from rnnkit.analysis.boundaries import plot_boundary
from rnnkit.analysis.moons import make_moons

X, y = make_moons(200, noise=0.2, seed=0)
net = ff.train_network(X, y, hidden=3)  # 20,000 passes of gradient descent, learning rate 0.01, L2 0.01
baseline = ff.train_logistic_regression(X, y)
for model in (net, baseline):
    print(f"{model.name}: loss {model.loss:.4f}, training accuracy {model.accuracy:.3f}")

errors = ff.gradcheck((2, 3, 2))  # backpropagation against centred finite differences
print("gradient check, worst relative error per parameter:",
      ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
display(Image(filename=plot_boundary(net, X, y, work / "boundary.png", baseline=baseline)))
"""),
    md(r"""
## 2. The RNN language model, from scratch

A language model gives the probability of the next word given the words so far. The RNN reads one
word $x_t$ (a one-hot vector over the vocabulary of $K$ words) per step and keeps a hidden state
$s_t$ of $H$ units, its memory of everything read so far:

$$s_t = \tanh(U x_t + W s_{t-1}), \qquad o_t = \mathrm{softmax}(V s_t)$$

with $U$ ($H \times K$), $W$ ($H \times H$) and $V$ ($K \times H$) shared by every step. The loss
is the cross-entropy of the words that really came next,
$L = -\frac{1}{N} \sum_t \ln o_t[y_t]$; with random weights every word is about equally likely,
so the loss starts near $\ln K$.

`rnnkit.numpy_engine.tutorial.RNNNumpy` is the tutorial's model, written the tutorial's way: one
sentence at a time, with its names (`forward_propagation`, `calculate_loss`, `bptt`, `sgd_step`,
`gradient_check`). The sentences start with `<s>` and end with `</s>`: the input is the sentence
without its last token, the target the sentence shifted by one.
"""),
    code(r"""
from rnnkit.data import read_sentences
from rnnkit.numpy_engine.tutorial import RNNNumpy
from rnnkit.text import Vocab, WordTokenizer

tokenizer = WordTokenizer()
sentences = [tokenizer.tokenize(s.lower()) for s in read_sentences(CORPUS)]
vocab = Vocab.build(sentences, max_size=500)  # <unk>, <s>, </s> and the 497 most frequent words


def example(tokens):
    ids = [vocab.bos_id] + vocab.encode(tokens) + [vocab.eos_id]
    return ids[:-1], ids[1:]  # x: <s> w1 .. wn, y: w1 .. wn </s>


X_train, y_train = zip(*(example(s) for s in sentences[:100]))
print(len(sentences), "sentences; the first:", " ".join(sentences[0]))
print("x:", X_train[0][:8], "...")
print("y:", y_train[0][:8], "...")

model = RNNNumpy(word_dim=len(vocab), hidden_dim=20, bptt_truncate=4, seed=0)
o, s = model.forward_propagation(X_train[0])
print(f"o: {o.shape} (one distribution over {len(vocab)} words per step), s: {s.shape}")
print("predicted next words:", " ".join(vocab.decode(model.predict(X_train[0])[:8])), "...")
print(f"expected loss for random predictions: ln {len(vocab)} = {math.log(len(vocab)):.4f}")
print(f"actual loss of the untrained model:          {model.calculate_loss(X_train, y_train):.4f}")
"""),
    md(r"""
### Backpropagation through time, and checking it

The gradient of the loss at step $t$ flows back through every earlier state: each step back
multiplies it by the Jacobian of one step,

$$\frac{\partial s_t}{\partial s_{t-1}} = \mathrm{diag}(1 - s_t^2)\, W,
\qquad \frac{\partial L_t}{\partial W} = \sum_{k \le t} \frac{\partial L_t}{\partial s_t}
\Bigl(\prod_{j=k+1}^{t} \frac{\partial s_j}{\partial s_{j-1}}\Bigr) \frac{\partial s_k}{\partial W}.$$

`bptt` computes these sums (truncated to `bptt_truncate` steps back, as the tutorial does), and
`gradient_check` compares them, entry by entry, with the slope of the loss itself,
$\bigl(L(\theta + h) - L(\theta - h)\bigr) / 2h$, on the tutorial's own example: a vocabulary of
100 words, 10 hidden units, untruncated.
"""),
    code(r"""
check = RNNNumpy(word_dim=100, hidden_dim=10, bptt_truncate=1000, seed=0)
worst = check.gradient_check([0, 1, 2, 3], [1, 2, 3, 4], h=0.001, error_threshold=0.01)
for name, error in worst.items():
    print(f"  d L / d {name}: worst relative error {error:.2e}")
print(f"twin gradient check: worst relative error {max(worst.values()):.2e} (the tutorial's threshold: 1e-2)")
"""),
    md(r"""
### Stochastic gradient descent

One `sgd_step` per sentence: $\theta \leftarrow \theta - \eta\, \partial L / \partial \theta$,
with the truncated BPTT gradients. A few passes over 100 sentences already bring the loss well
below $\ln K$.
"""),
    code(r"""
losses = [model.calculate_loss(X_train, y_train)]
for epoch in range(1, 6):
    for x_i, y_i in zip(X_train, y_train):
        model.sgd_step(x_i, y_i, learning_rate=0.005)
    losses.append(model.calculate_loss(X_train, y_train))
    print(f"epoch {epoch}: loss {losses[-1]:.4f}")
print(f"twin SGD: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
"""),
    md(r"""
## 3. The same network, vectorized: rnnkit's numpy engine

Looping over sentences and steps in Python is slow. `rnnkit.numpy_engine` computes the same
numbers for a whole batch at once (time-major arrays of shape $(T, B)$), with PyTorch's parameter
names and equations, and the gated cells too:

- **GRU**: $z = \sigma(\cdot)$, $r = \sigma(\cdot)$, $n = \tanh(W_{in} x + r \odot (W_{hn} h + b_{hn}))$,
  $h' = (1 - z) \odot n + z \odot h$;
- **LSTM**: $c' = f \odot c + i \odot g$, $h' = o \odot \tanh(c')$.

Its gradient check perturbs every parameter of a small random model (embedding, recurrent
weights, decoder) with a 4-point centred difference in float64, so a correct backward pass
agrees to $10^{-8}$ or better (the tests require $10^{-6}$). `rnnkit gradcheck --cell lstm` runs the
same check from the command line.
"""),
    code(r"""
from rnnkit.numpy_engine import gradcheck

worst_engine = 0.0
for cell in ("rnn", "gru", "lstm"):
    errors = gradcheck(cell, num_layers=2, seed=0)  # {parameter: worst relative error}
    name, error = max(errors.items(), key=lambda item: item[1])
    worst_engine = max(worst_engine, error)
    print(f"  {cell:<4} 2 layers, {len(errors)} parameters: worst relative error {error:.1e} ({name})")
print(f"engine gradient check: worst relative error {worst_engine:.1e}")
"""),
    md(r"""
## 4. Training on the Reddit comments

`rnnkit.train` does the whole job: it reads the corpus, builds the vocabulary, cuts the sentences
into batches, trains, evaluates on the held-out part after every epoch and keeps the best model in
a model directory. The tutorial trained an RNN of 100 units over 8,000 words with SGD for hours
(`rnnkit train --recipe reddit-tutorial` is that setup); here a model of 32 units over 2,000
words gets 150 steps of Adam on batches of 16 sentences, a few seconds.
"""),
    code(r"""
model_dir = work / "reddit-rnn"
result = rnnkit.train(
    CORPUS, model_dir,
    model={"cell": "rnn", "nonlinearity": "tanh", "embed_dim": 32, "hidden_dim": 32},
    tokenizer={"level": "word", "lowercase": True, "max_vocab": 2000},
    config={"engine": "numpy", "batching": "sentences", "batch_size": 16, "seq_len": 40,
            "optimizer": "adam", "lr": 0.01, "epochs": 100, "max_steps": 150, "seed": 0},
    overwrite=True, progress=False, log=print)
print(f"{result.steps} steps in {result.seconds:.1f} s: validation perplexity {result.valid.ppl:.1f} "
      f"(a unigram model: {result.unigram.ppl:.1f})")
"""),
    md(r"""
### Scoring and generating

`rnnkit.load` gives a `LanguageModel`: it scores sentences the way KenLM and SRILM users expect
(`<s>` is context, each word and `</s>` are predicted, natural log unless `log_base` says
otherwise) and generates text by sampling from $o_t$ one word at a time. A sentence in a sensible
order should score higher than the same words shuffled.
"""),
    code(r"""
lm = rnnkit.load(model_dir)
examples = ["i think it is a good idea .",
            "idea good a is it think i .",
            "the game was released last year ."]
for text in examples:
    print(f"{lm.score(text):9.3f}  {text}")
print(f"perplexity of the three: {lm.perplexity(examples):.1f}")

print("\nper word:", ", ".join(f"{token} {logprob:.2f}" for logprob, token, _ in lm.full_scores(examples[0])))

print("\nsamples (temperature 0.8, seed 1):")
samples = lm.generate(temperature=0.8, num_samples=3, max_len=20, seed=1)
for text in samples:
    print("  ", text)
"""),
    md(r"""
## 5. The vanishing gradient, and how far back a model remembers

The gradient of the loss at step $t$ with respect to the state $k$ steps back is a product of $k$
Jacobians,

$$\frac{\partial L_t}{\partial s_{t-k}} = \frac{\partial L_t}{\partial s_t}
\prod_{j=t-k+1}^{t} \mathrm{diag}(1 - s_j^2)\, W ,$$

and $\lVert \mathrm{diag}(1 - s_j^2) W \rVert \le \lVert W \rVert$. When that norm is below 1 the
gradient shrinks geometrically: the RNN cannot learn that a word depends on one read many steps
earlier. The GRU and the LSTM carry their state through gates instead ($c_t = f_t \odot c_{t-1} +
\ldots$), which pass the error back multiplied by the gates, not squeezed by $W$ every step.

`rnnkit.analysis.gradients` measures $g_k = \lVert \partial L_t / \partial h_{t-k} \rVert$ for fresh
cells of the same size (32 units) on random words; the decay per step is the slope of $\ln g_k$.
With PyTorch's initialisation the gates start half open ($\sigma(0) = 0.5$), so fresh GRU and LSTM
cells lose the error almost as fast as the RNN; an LSTM whose forget gate starts open (a forget
bias of 1, as TensorFlow and Keras do) is the fourth line. `rnnkit analyze gradients --cell rnn gru
lstm --forget-bias 0 1` does the same from the command line.
"""),
    code(r"""
from rnnkit.analysis.figures import draw_lags, gradient_series, memory_series, save_figure
from rnnkit.analysis.gradients import measure_gradients
from rnnkit.analysis.inputs import fresh_model, random_windows, unigram
from rnnkit.analysis.memory import measure_memory

SUBJECTS = [("rnn", 0.0), ("gru", 0.0), ("lstm", 0.0), ("lstm", 1.0)]
STEPS, POSITIONS, WARMUP = 30, 4, 20


def label(cell, forget_bias):
    return f"{cell}, forget bias 1" if forget_bias else cell


fresh = {label(c, fb): fresh_model(c, 32, seed=0, forget_bias=fb) for c, fb in SUBJECTS}
gradient_reports = []
for name, m in fresh.items():
    x, y = random_windows(m.config.vocab_size, WARMUP + STEPS + POSITIONS, 16, seed=0)
    gradient_reports.append(measure_gradients(m, x, y, steps=STEPS, origins=POSITIONS, label=name))
for r in gradient_reports:
    print(f"  {r.label:<22} g_0 {r.mean[0]:.2e}  g_{STEPS} {r.mean[-1]:.2e}  decay per step x{r.decay():.3f}")

fig = draw_lags([gradient_series(r) for r in gradient_reports], ylabel=r"mean $\|\partial L_t / \partial h_{t-k}\|$",
                title="The gradient k steps back: fresh cells of 32 units, random words")
display(Image(filename=save_figure(fig, work / "gradients.png")))
"""),
    md(r"""
The gradient is what training sees; *memory* is what the model does. `rnnkit.analysis.memory`
replaces one input word by another and measures how much the next-word distribution moves $k$ steps
later, the total variation $D_k = \frac{1}{2} \sum_v \lvert p_{t+k}(v) - p'_{t+k}(v) \rvert$,
averaged over many windows. A fresh model forgets at about the rate its gradient fades; training
is what teaches the gates to hold on (docs/analysis.md measures trained character models: the
LSTM's gradient falls 10x every 20 steps, the RNN's every 6).
"""),
    code(r"""
memory_reports = []
for name, m in fresh.items():
    x, _ = random_windows(m.config.vocab_size, WARMUP + 40 + 1, 64, seed=0)
    memory_reports.append(measure_memory(m, x, warmup=WARMUP, probs=unigram(x, m.config.vocab_size),
                                         measure="tv", label=name))
for r in memory_reports:
    print(f"  {r.label:<22} D_0 {r.mean[0]:.2e}  below 1% of it after k = {r.reach_text(0.01)}  "
          f"decay per step x{r.decay():.3f}")

fig = draw_lags([memory_series(r) for r in memory_reports], ylabel="mean total variation",
                xlabel="k (steps since the replaced word)",
                title="The change k steps after one word is replaced: fresh cells of 32 units")
display(Image(filename=save_figure(fig, work / "memory.png")))
"""),
    md(r"""
## 6. The same model on the torch engine

A model directory holds float32 tensors with PyTorch's names and layouts, so the torch engine
(`torch.nn.RNN`, cuDNN on a GPU) reads the model trained above as it is: the same scores to float32
rounding, and, since sampling is a function of the logits and a seeded generator, the same text
for the same seed. The readable twin of section 2 reads it too (in float64, one sentence at a time):
the model rnnkit trained *is* the tutorial's RNN, with $U = W_{ih} E^\top$ for its embedding $E$.
"""),
    code(r"""
from rnnkit.numpy_engine import tutorial

lm_torch = rnnkit.load(model_dir, engine="torch")
scores_numpy = np.array([r.logprob for r in lm.score_sentences(examples, per_token=False)])
scores_torch = np.array([r.logprob for r in lm_torch.score_sentences(examples, per_token=False)])
for a, b, text in zip(scores_numpy, scores_torch, examples):
    print(f"  numpy {a:10.5f}  torch {b:10.5f}  {text}")
print(f"max |numpy - torch| = {np.abs(scores_numpy - scores_torch).max():.1e} nats")

same = lm_torch.generate(temperature=0.8, num_samples=3, max_len=20, seed=1) == samples
print(f"same samples for seed 1 on both engines: {same}")

twin = tutorial.from_model_dir(model_dir)


def twin_logprob(text):
    ids = [lm.vocab.bos_id] + lm.vocab.encode(lm.tokenize(text)) + [lm.vocab.eos_id]
    return -twin.calculate_total_loss([ids[:-1]], [ids[1:]])  # its loss is minus the log-probability


scores_twin = np.array([twin_logprob(text) for text in examples])
print(f"max |numpy - twin| = {np.abs(scores_numpy - scores_twin).max():.1e} nats")
"""),
    md(r"""
## Where next

- `rnnkit train --recipe reddit-tutorial --out tutorial` trains the tutorial's own setup;
  `--cell gru` or `--cell lstm`, `--engine torch`, `--num-layers 2` change it one option at a time.
- `rnnkit score`, `rnnkit generate`, `rnnkit rescore` use a model from the command line (README.md).
- `rnnkit analyze feedforward | gradients | memory | activations` draw this notebook's figures at full
  size, for trained models too (docs/analysis.md).
"""),
    code(r"""
print(f"notebook executed in {time.perf_counter() - started:.0f} s")
"""),
]


def build():
    """The notebook (no outputs) made from CELLS."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [new_markdown_cell(text) if kind == "markdown" else new_code_cell(text) for kind, text in CELLS]
    for n, cell in enumerate(cells):
        cell["id"] = f"cell-{n:02d}"  # stable ids: rebuilding changes nothing that did not change
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC),
                                             "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def execute(nb, cwd: str | Path, timeout: int = CELL_TIMEOUT):
    """Run every cell of `nb` in a fresh python3 kernel started in `cwd`; the outputs go into
    `nb`. Raises nbclient's CellExecutionError at the first cell that fails."""
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, record_timing=False, coalesce_streams=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    import nbformat

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    p.add_argument("--out", type=Path, default=NOTEBOOK, help=f"where to write (default: {NOTEBOOK})")
    args = p.parse_args(argv)
    nb = build()
    if not args.no_execute:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rnnkit-notebook-") as cwd:
            execute(nb, cwd)
        print(f"executed in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    nbformat.write(nb, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
