import numpy as np
import pytest
import torch

from recsys.binary_codes import BinaryCoder, binary_code, dot_decimal, ste_sign, to_bits

BITS = [0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0]  # 01011011 11001000


# ---------------------------------------------------------------- text forms


def test_hand_computed_codes():
    assert binary_code(BITS) == "0101101111001000"
    assert dot_decimal(BITS) == "91.200"
    assert dot_decimal([1] * 8 + [0] * 8 + [0, 0, 0, 0, 0, 0, 1, 1] + [0, 0, 0, 1, 0, 0, 0, 1]) == "255.0.3.17"


def test_plus_minus_one_bool_and_torch_inputs_agree():
    pm = [1 if b else -1 for b in BITS]
    assert dot_decimal(pm) == "91.200"
    assert binary_code(np.array(pm, dtype=np.float32)) == "0101101111001000"
    assert dot_decimal(np.array(BITS, dtype=bool)) == "91.200"
    assert dot_decimal(torch.tensor(pm)) == "91.200"


def test_batches_give_lists():
    batch = np.array([BITS, [1] * 16])
    assert dot_decimal(batch) == ["91.200", "255.255"]
    assert binary_code(batch) == ["0101101111001000", "1" * 16]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="multiple of 8"):
        dot_decimal(BITS[:12])
    assert binary_code(BITS[:12]) == "010110111100"  # any length is fine as plain bits
    with pytest.raises(ValueError):
        dot_decimal([])
    with pytest.raises(ValueError):
        binary_code([0, 1, 2, 1, 0, 0, 1, 1])
    with pytest.raises(ValueError):
        binary_code([0.3, -1.2, 0.5, 0.1])  # raw embeddings are not bits
    with pytest.raises(ValueError):
        to_bits([-1, 0, 1, 1])  # mixed conventions are ambiguous


# ---------------------------------------------------------------- STE


def test_ste_sign_forward_and_gradient():
    x = torch.tensor([-2.0, -0.1, 0.0, 0.3], requires_grad=True)
    y = ste_sign(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_gradient_reaches_projection_through_sign():
    rng = np.random.default_rng(0)
    U = rng.normal(size=(5, 6)).astype(np.float32)
    coder = BinaryCoder(n_bits=8, seed=0).fit(U, U, np.arange(5), np.arange(5), epochs=0)
    W = coder.params["W_user"].requires_grad_(True)
    h = coder._signs(torch.from_numpy(U), "user")
    assert set(h.unique().tolist()) <= {-1.0, 1.0}
    (h * torch.from_numpy(rng.normal(size=h.shape).astype(np.float32))).sum().backward()
    assert W.grad is not None and W.grad.abs().sum() > 0
    # a plain torch.sign would block it
    W.grad = None
    z = torch.sigmoid(torch.from_numpy(U) @ W.T) - 0.5
    torch.sign(z).sum().backward()
    assert W.grad.abs().sum() == 0


# ---------------------------------------------------------------- fitting


def _planted(seed=1, k=4, n_users=80, n_items=60, d=16, noise=0.3):
    """k user groups, k item groups, group g likes group g; centres drawn
    independently for users and items so raw geometry carries no signal."""
    rng = np.random.default_rng(seed)
    cu, ci = rng.normal(size=(k, d)), rng.normal(size=(k, d))
    gu, gi = np.arange(n_users) % k, np.arange(n_items) % k
    U = (cu[gu] + noise * rng.normal(size=(n_users, d))).astype(np.float32)
    V = (ci[gi] + noise * rng.normal(size=(n_items, d))).astype(np.float32)
    R = gu[:, None] == gi[None, :]
    users, items = np.nonzero(R)
    return U, V, users, items, R


def _mean_auc(scores, R):
    aucs = []
    for s, r in zip(scores, R):
        p, n = s[r][:, None], s[~r][None, :]
        aucs.append((p > n).mean() + 0.5 * (p == n).mean())
    return float(np.mean(aucs))


def _hamming_auc(coder, U, V, R):
    bu, bi = coder.encode_users(U), coder.encode_items(V)
    ham = (bu[:, None, :] != bi[None, :, :]).sum(-1)
    np.testing.assert_array_equal(coder.score(bu, bi), coder.n_bits - 2 * ham)
    return _mean_auc(-ham, R)


@pytest.mark.parametrize("shared", [True, False])
def test_fit_recovers_planted_structure(shared):
    U, V, users, items, R = _planted()
    untrained = BinaryCoder(n_bits=16, seed=1, shared=shared).fit(U, V, users, items, epochs=0)
    trained = BinaryCoder(n_bits=16, seed=1, shared=shared).fit(
        U, V, users, items, epochs=30, lr=0.05, batch_size=256
    )
    a0, a1 = _hamming_auc(untrained, U, V, R), _hamming_auc(trained, U, V, R)
    assert a1 > 0.9, (a0, a1)
    assert a0 < 0.75, (a0, a1)
    assert trained.history[-1] < trained.history[0]
    bits = trained.encode_users(U)
    assert bits.dtype == np.uint8 and bits.shape == (len(U), 16) and set(np.unique(bits)) <= {0, 1}


def test_same_seed_same_codes_other_seed_differs():
    U, V, users, items, _ = _planted()
    kw = dict(epochs=5, lr=0.05, batch_size=64)
    a = BinaryCoder(n_bits=16, seed=3).fit(U, V, users, items, **kw)
    b = BinaryCoder(n_bits=16, seed=3).fit(U, V, users, items, **kw)
    c = BinaryCoder(n_bits=16, seed=4).fit(U, V, users, items, **kw)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
    assert a.history == b.history
    np.testing.assert_array_equal(a.encode_items(V), b.encode_items(V))
    assert not torch.equal(a.params["W_user"], c.params["W_user"])


def test_state_round_trip(tmp_path):
    U, V, users, items, _ = _planted()
    coder = BinaryCoder(n_bits=16, seed=0, shared=False).fit(U, V, users, items, epochs=3, batch_size=64)
    torch.save({"binary_codes": coder.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["binary_codes"]
    back = BinaryCoder.from_state_dict(state)
    assert (back.n_bits, back.shared, back.input_scale) == (16, False, coder.input_scale)
    np.testing.assert_array_equal(back.encode_users(U), coder.encode_users(U))
    np.testing.assert_array_equal(back.encode_items(V), coder.encode_items(V))
    assert back.user_code(U[0], dotted=True) == dot_decimal(coder.encode_users(U[0]))
    assert len(back.item_code(V[:3])) == 3 and back.item_code(V[0]) == binary_code(coder.encode_items(V[0]))


def test_misuse_raises():
    U, V, users, items, _ = _planted()
    with pytest.raises(RuntimeError):
        BinaryCoder().encode_users(U)
    with pytest.raises(ValueError):
        BinaryCoder().fit(U, V[:, :8], users, items, epochs=0)  # shared needs equal dims
    with pytest.raises(ValueError):
        BinaryCoder().fit(U, V, users, items + len(V), epochs=0)
    coder = BinaryCoder(n_bits=8).fit(U, V, users, items, epochs=0)
    with pytest.raises(ValueError):
        coder.encode_items(V[:, :8])
