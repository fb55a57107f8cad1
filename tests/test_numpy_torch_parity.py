"""The numpy engine reproduces torch.nn's Embedding + RNN/GRU/LSTM + Linear + cross-entropy
(same names and layouts, float64): loss and every gradient. Skipped when torch is absent."""

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.numpy_engine import RNNLM

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("cell,nl", [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")])
def test_matches_torch_nn(cell, nl):
    cfg = ModelConfig(vocab_size=13, cell=cell, nonlinearity=nl, embed_dim=6, hidden_dim=5, num_layers=2)
    model = RNNLM(cfg, dtype=np.float64, seed=3)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 13, (7, 4)), rng.integers(0, 13, (7, 4))
    p = model.state_dict()
    emb = torch.nn.Embedding(13, 6).double()
    dec = torch.nn.Linear(5, 13).double()
    kw = {"nonlinearity": nl} if cell == "rnn" else {}
    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](6, 5, num_layers=2, **kw).double()
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(p["embedding.weight"]))
        dec.weight.copy_(torch.from_numpy(p["decoder.weight"]))
        dec.bias.copy_(torch.from_numpy(p["decoder.bias"]))
        for name, t in rnn.named_parameters():
            t.copy_(torch.from_numpy(p["rnn." + name]))
    out, _ = rnn(emb(torch.from_numpy(x)))
    logits = dec(out)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 13), torch.from_numpy(y).reshape(-1), reduction="sum")
    loss.backward()
    ref = {"embedding.weight": emb.weight.grad, "decoder.weight": dec.weight.grad, "decoder.bias": dec.bias.grad}
    ref.update({"rnn." + n: t.grad for n, t in rnn.named_parameters()})
    np_logits, np_loss, _, _ = model.forward(x, y)
    np.testing.assert_allclose(np_logits, logits.detach().numpy(), rtol=1e-12, atol=1e-14)
    loss2, _, grads, _ = model.forward_backward(x, y)
    assert loss2 == pytest.approx(loss.item(), rel=1e-12) and np_loss == pytest.approx(loss.item(), rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name].numpy(), rtol=1e-10, atol=1e-13, err_msg=name)
