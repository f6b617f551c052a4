"""The float reference trainer: gradients, optimizers, initialisation, configuration, learning."""

import json

import numpy as np
import pytest

from bp_hw.data import Dataset, load_dataset, one_hot_targets, split_dataset
from bp_hw.errors import BpHwError
from bp_hw.modelfile import FloatModel
from bp_hw.reference import (ACTIVATIONS, Network, TrainConfig, Trainer, get_activation, get_loss, init_weights,
                             make_optimizer, train)

HIDDEN = ["sigmoid", "tanh", "relu", "identity"]
# (output activation, loss): every pairing the trainer accepts.
OUTPUTS = [("sigmoid", "mse"), ("tanh", "mse"), ("relu", "mse"), ("identity", "mse"),
           ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy")]


def random_problem(hidden, output, loss, seed=0, layers=(3, 5, 4, 3), n=7):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.8, (o, i)) for i, o in zip(layers[:-1], layers[1:])]
    biases = [rng.normal(0, 0.3, o) for o in layers[1:]]
    net = Network(weights, biases, [hidden] * (len(layers) - 2) + [output], loss)
    X = rng.normal(size=(n, layers[0]))
    if output == "softmax":
        T = one_hot_targets(rng.integers(0, layers[-1], n), layers[-1], output)
    elif loss == "cross_entropy":
        T = rng.uniform(0, 1, (n, layers[-1]))  # soft targets exercise the full formula
    else:
        T = rng.normal(size=(n, layers[-1]))
    return net, X, T


def numeric_gradients(net, X, T, h=1e-5):
    grads = []
    for p in net.params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + h
            up = net.cost(X, T)
            p[i] = keep - h
            down = net.cost(X, T)
            p[i] = keep
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


# --- gradient check ----------------------------------------------------------------------------

@pytest.mark.parametrize("output, loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_matches_central_differences(hidden, output, loss):
    net, X, T = random_problem(hidden, output, loss, seed=HIDDEN.index(hidden) * 10 + OUTPUTS.index((output, loss)))
    analytic = net.gradients(X, T)
    numeric = numeric_gradients(net, X, T)
    a = np.concatenate([g.ravel() for g in analytic])
    n = np.concatenate([g.ravel() for g in numeric])
    assert np.linalg.norm(n) > 1e-3  # a meaningful, non-vanishing gradient
    rel = np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n))
    assert rel < 1e-6, f"relative error {rel:.2e}"
    for ga, gn in zip(analytic, numeric):
        assert ga.shape == gn.shape
        np.testing.assert_allclose(ga, gn, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_activation_derivative_matches_central_differences(name):
    act = get_activation(name)
    z = np.linspace(-4, 4, 41) + 0.013  # avoid the ReLU kink at 0
    h = 1e-6
    numeric = (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(z, act.forward(z)), numeric, rtol=1e-7, atol=1e-9)
    g = np.cos(z)
    np.testing.assert_allclose(act.backward(z, act.forward(z), g), g * numeric, rtol=1e-7, atol=1e-9)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 5))
    g = rng.normal(size=(4, 5))
    act = ACTIVATIONS["softmax"]
    a = act.forward(z)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    for i in range(4):
        J = np.diag(a[i]) - np.outer(a[i], a[i])
        np.testing.assert_allclose(act.backward(z, a, g)[i], J.T @ g[i], atol=1e-14)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_simplified_cross_entropy_delta_equals_the_chain_rule(output):
    """o - t for the canonical pairs is exactly dC/da * f'(z) where both are finite."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 3))
    act = get_activation(output)
    a = act.forward(z)
    t = one_hot_targets(rng.integers(0, 3, 6), 3, output)
    loss = get_loss("cross_entropy", output)
    fused = loss.output_delta(z, a, t, act)
    chain = act.backward(z, a, loss.grad_output(a, t))
    np.testing.assert_allclose(fused, chain, atol=1e-12)
    np.testing.assert_allclose(fused, a - t, atol=1e-15)


def test_losses_follow_the_documented_formulas():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 3))
    t = one_hot_targets(rng.integers(0, 3, 5), 3, "softmax")
    a = ACTIVATIONS["sigmoid"].forward(z)
    assert np.isclose(get_loss("mse", "sigmoid").value(z, a, t), np.mean(0.5 * np.sum((t - a) ** 2, axis=1)))
    bce = -np.mean(np.sum(t * np.log(a) + (1 - t) * np.log(1 - a), axis=1))
    assert np.isclose(get_loss("cross_entropy", "sigmoid").value(z, a, t), bce)
    s = ACTIVATIONS["softmax"].forward(z)
    assert np.isclose(get_loss("cross_entropy", "softmax").value(z, s, t), -np.mean(np.sum(t * np.log(s), axis=1)))


def test_saturated_outputs_stay_finite():
    z = np.array([[800.0, -800.0], [-800.0, 800.0]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    for output in ("softmax", "sigmoid"):
        act, loss = get_activation(output), get_loss("cross_entropy", output)
        a = act.forward(z)
        assert np.isfinite(loss.value(z, a, t)) and loss.value(z, a, t) > 700
        assert np.all(np.isfinite(loss.output_delta(z, a, t, act)))


def test_invalid_loss_pairs():
    with pytest.raises(BpHwError, match="cross_entropy"):
        get_loss("mse", "softmax")
    with pytest.raises(BpHwError, match="--output-activation softmax"):
        get_loss("cross_entropy", "tanh")


# --- optimizers --------------------------------------------------------------------------------

def run_optimizer(name, lr, steps, **kw):
    """Minimise 1/2 ||p - c||^2 (gradient p - c)."""
    c = np.array([1.0, -2.0, 3.0])
    p = np.zeros(3)
    opt = make_optimizer(name, [p], lr, **kw)
    for _ in range(steps):
        opt.step([p - c])
    return p, c


def test_sgd_step():
    p, c = run_optimizer("sgd", 0.1, 1)
    np.testing.assert_allclose(p, 0.1 * c)


def test_momentum_accumulates_velocity():
    p, c = run_optimizer("momentum", 0.1, 2, momentum=0.5)
    v1 = 0.1 * c                       # first step: -lr * g with g = -c
    v2 = 0.5 * v1 + 0.1 * (c - v1)     # second: mu * v - lr * g(p1)
    np.testing.assert_allclose(p, v1 + v2)


def test_adam_and_rmsprop_first_steps():
    # Adam's bias-corrected first step has size lr in every coordinate.
    p, c = run_optimizer("adam", 0.01, 1)
    np.testing.assert_allclose(p, 0.01 * np.sign(c), rtol=1e-6)
    # RMSprop: s = (1 - rho) g^2, so the step is lr / sqrt(1 - rho) per coordinate.
    p, c = run_optimizer("rmsprop", 0.01, 1, rho=0.9)
    np.testing.assert_allclose(p, 0.01 / np.sqrt(0.1) * np.sign(c), rtol=1e-6)


@pytest.mark.parametrize("name, lr", [("sgd", 0.1), ("momentum", 0.05), ("rmsprop", 0.01), ("adam", 0.05)])
def test_optimizers_converge(name, lr):
    p, c = run_optimizer(name, lr, 2000)
    np.testing.assert_allclose(p, c, atol=1e-2)


def test_unknown_optimizer():
    with pytest.raises(BpHwError, match="unknown optimizer"):
        make_optimizer("lbfgs", [np.zeros(1)], 0.1)


# --- initialisation ----------------------------------------------------------------------------

def test_init_is_seeded_and_shaped():
    layers = [64, 32, 10]
    for scheme in ("small", "xavier", "he"):
        w1, b1 = init_weights(layers, scheme, 7)
        w2, b2 = init_weights(layers, scheme, 7)
        w3, _ = init_weights(layers, scheme, 8)
        assert [w.shape for w in w1] == [(32, 64), (10, 32)]
        assert [b.shape for b in b1] == [(32,), (10,)]
        assert all(np.array_equal(x, y) for x, y in zip(w1 + b1, w2 + b2))
        assert not np.array_equal(w1[0], w3[0])


def test_init_scales():
    w, b = init_weights([64, 32, 10], "small", 0)
    assert all(np.abs(x).max() <= 0.5 for x in w + b) and np.abs(b[0]).max() > 0
    w, b = init_weights([64, 32, 10], "xavier", 0)
    for W in w:
        limit = np.sqrt(6 / sum(W.shape))
        assert np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit
    assert all(not x.any() for x in b)
    w, _ = init_weights([400, 300, 10], "he", 0)
    assert abs(w[0].std() / np.sqrt(2 / 400) - 1) < 0.02


@pytest.mark.parametrize("layers, scheme, seed, message", [
    ([4], "xavier", 0, "at least two"), ([4, 0, 3], "xavier", 0, "at least two positive"),
    ([4, 3], "lecun", 0, "unknown initialisation"), ([4, 3], "he", -1, "seed"),
])
def test_init_errors(layers, scheme, seed, message):
    with pytest.raises(BpHwError, match=message):
        init_weights(layers, scheme, seed)


# --- configuration -----------------------------------------------------------------------------

def test_config_roundtrips_through_json():
    cfg = TrainConfig(data="xor", layers=[2, 4, 1], activation="tanh", optimizer="adam", lr=0.01, clip=1.0)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    resolved = cfg.resolve(2, 2)
    assert TrainConfig.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved


def test_config_defaults_are_the_example_command():
    cfg = TrainConfig().resolve(4, 3)
    assert (cfg.data, cfg.layers, cfg.activation, cfg.loss, cfg.optimizer) == ("iris", [4, 8, 3], "sigmoid", "mse", "sgd")
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.seed) == (0.5, 1, 100, 0)
    assert cfg.output_activation == "sigmoid" and cfg.init == "xavier"
    assert TrainConfig(loss="cross_entropy").resolve(4, 3).output_activation == "softmax"
    assert TrainConfig(loss="cross_entropy", layers=[2, 3, 1]).resolve(2, 2).output_activation == "sigmoid"
    assert TrainConfig(activation="relu").resolve(4, 3).init == "he"


@pytest.mark.parametrize("kw, n_in, n_classes, message", [
    (dict(activation="softmax"), 4, 3, "softmax can only be the output activation"),
    (dict(output_activation="softmax"), 4, 3, "needs --loss cross_entropy"),
    (dict(loss="cross_entropy", output_activation="tanh"), 4, 3, "needs a probability output"),
    (dict(loss="cross_entropy", output_activation="softmax", layers=[2, 3, 1]), 2, 2, "at least 2 outputs"),
    (dict(layers=[3, 8, 3]), 4, 3, "starts with 3 inputs but the data has 4"),
    (dict(layers=[4, 8, 1]), 4, 3, "ends with 1 outputs but the data has 3 classes"),
    (dict(layers=[2, 4, 3]), 2, 2, r"use 1 \(binary output\) or 2 outputs"),
    (dict(layers=[4]), 4, 3, "at least two positive sizes"),
    (dict(layers=[4, 0, 3]), 4, 3, "at least two positive sizes"),
    (dict(lr=0.0), 4, 3, "--lr must be > 0"),
    (dict(lr=float("nan")), 4, 3, "--lr must be > 0"),
    (dict(epochs=0), 4, 3, "--epochs must be >= 1"),
    (dict(batch_size=-2), 4, 3, "--batch-size"),
    (dict(momentum=1.0), 4, 3, "--momentum must be in"),
    (dict(clip=-1.0), 4, 3, "--clip must be > 0"),
    (dict(l2=-1e-3), 4, 3, "--l2 must be >= 0"),
    (dict(test_fraction=1.0), 4, 3, "--test-fraction"),
    (dict(optimizer="lbfgs"), 4, 3, "unknown --optimizer"),
    (dict(activation="gelu"), 4, 3, "unknown --activation"),
    (dict(init="lecun"), 4, 3, "unknown --init"),
])
def test_config_rejects(kw, n_in, n_classes, message):
    with pytest.raises(BpHwError, match=message):
        TrainConfig(**kw).resolve(n_in, n_classes)


def test_config_rejects_unknown_keys():
    with pytest.raises(BpHwError, match="unknown training option"):
        TrainConfig.from_dict({"lr": 0.1, "learning_rate": 0.1})


# --- the trainer -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def iris_split():
    return split_dataset(load_dataset("iris"), 0.3, 0)


def test_iris_must_show(iris_split):
    """bp-hw train --data iris --layers 4,8,3 --activation sigmoid --loss mse --optimizer sgd --lr 0.5
    --batch-size 1 --epochs 100 --seed 0."""
    train_ds, test_ds = iris_split
    model = train(train_ds, test_ds, TrainConfig(layers=[4, 8, 3]))
    assert model.accuracy(test_ds.X, test_ds.y) >= 0.90
    assert model.history["test_accuracy"][-1] == model.accuracy(test_ds.X, test_ds.y)
    assert model.history["train_loss"][-1] < model.history["train_loss"][0] / 5
    assert all(len(v) == 100 for v in model.history.values())


@pytest.mark.parametrize("seed", range(5))
def test_xor_must_show(seed):
    xor = load_dataset("xor")
    train_ds, test_ds = split_dataset(xor)
    model = train(train_ds, test_ds, TrainConfig(data="xor", layers=[2, 4, 1], lr=0.5, epochs=3000, seed=seed))
    assert model.history["train_accuracy"][-1] == 1.0
    np.testing.assert_array_equal(model.predict_classes(xor.X), xor.y)


@pytest.mark.parametrize("kw", [
    dict(optimizer="momentum", lr=0.1, batch_size=8),
    dict(optimizer="rmsprop", lr=0.01, batch_size=8),
    dict(optimizer="adam", lr=0.01, batch_size=8),
    dict(loss="cross_entropy", lr=0.1, batch_size=4),
    dict(loss="cross_entropy", output_activation="sigmoid", lr=0.1, batch_size=4),
    dict(activation="tanh", lr=0.05, batch_size=4),
    dict(activation="relu", loss="cross_entropy", lr=0.05, batch_size=4),
    dict(batch_size=0, lr=2.0, epochs=300),
    dict(layers=[4, 16, 8, 3], init="small", batch_size=4),
    dict(clip=0.5, l2=1e-4, batch_size=4),
])
def test_variants_learn_iris(iris_split, kw):
    train_ds, test_ds = iris_split
    model = train(train_ds, test_ds, TrainConfig(**kw))
    assert model.history["test_accuracy"][-1] >= 0.9
    assert model.history["train_accuracy"][-1] >= 0.9


def test_training_is_reproducible(iris_split):
    train_ds, test_ds = iris_split
    cfg = TrainConfig(epochs=5, batch_size=4)
    a, b = train(train_ds, test_ds, cfg), train(train_ds, test_ds, cfg)
    c = train(train_ds, test_ds, TrainConfig(epochs=5, batch_size=4, seed=1))
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_model_carries_normalisation_of_the_training_split(iris_split):
    train_ds, test_ds = iris_split
    model = train(train_ds, test_ds, TrainConfig(epochs=1))
    np.testing.assert_allclose(model.norm_mean, train_ds.X.mean(axis=0))
    np.testing.assert_allclose(model.norm_std, train_ds.X.std(axis=0))
    assert not np.allclose(model.norm_mean, np.vstack([train_ds.X, test_ds.X]).mean(axis=0))
    assert model.config == TrainConfig(epochs=1).resolve(4, 3).to_dict()


def test_constant_feature_gets_unit_std():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=40), np.full(40, 3.0)])
    ds = Dataset("c", X, (X[:, 0] > 0).astype(np.int64), 2)
    model = train(ds, ds, TrainConfig(layers=[2, 3, 1], epochs=2))
    assert model.norm_std[1] == 1.0 and np.all(np.isfinite(model.predict_proba(X)))


def test_model_forward_agrees_with_training_network(iris_split):
    train_ds, test_ds = iris_split
    model = train(train_ds, test_ds, TrainConfig(epochs=3, loss="cross_entropy"))
    net = Network(model.weights, model.biases, model.activations, model.loss)
    Xn = model.normalize(test_ds.X)
    for (z1, a1), (z2, a2) in zip(model.forward(Xn), net.forward(Xn)):
        np.testing.assert_array_equal(z1, z2)
        np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(model.predict_proba(test_ds.X).sum(axis=1), 1.0)


def make_trainer(**kw):
    cfg = TrainConfig(layers=[3, 4, 2], **kw).resolve(3, 2)
    w, b = init_weights(cfg.layers, cfg.init, 0)
    return Trainer(cfg, w, b)


def test_batch_modes_take_the_expected_number_of_steps():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(10, 3)), one_hot_targets(rng.integers(0, 2, 10), 2, "sigmoid")
    for batch_size, steps in ((1, 10), (3, 4), (0, 1), (50, 1)):
        trainer = make_trainer(optimizer="adam", lr=0.01, batch_size=batch_size)
        trainer.fit_epoch(X, T)
        assert trainer.optimizer.t == steps


def test_full_batch_step_is_the_mean_gradient():
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(6, 3)), one_hot_targets(rng.integers(0, 2, 6), 2, "sigmoid")
    trainer = make_trainer(lr=0.3, batch_size=0)
    before = [p.copy() for p in trainer.network.params]
    per_sample = [trainer.network.gradients(X[i:i + 1], T[i:i + 1]) for i in range(6)]
    trainer.fit_epoch(X, T)
    for k, (p0, p1) in enumerate(zip(before, trainer.network.params)):
        mean_grad = np.mean([g[k] for g in per_sample], axis=0)
        np.testing.assert_allclose(p1, p0 - 0.3 * mean_grad, atol=1e-14)


def test_clipping_bounds_the_step():
    rng = np.random.default_rng(2)
    X, T = rng.normal(size=(5, 3)) * 10, one_hot_targets(rng.integers(0, 2, 5), 2, "sigmoid")
    trainer = make_trainer(lr=1.0, clip=1e-3, batch_size=0)
    grads = trainer.network.gradients(X, T)
    norm = np.sqrt(sum(np.sum(g * g) for g in grads))
    assert norm > 1e-3
    before = [p.copy() for p in trainer.network.params]
    trainer.step(X, T)
    moved = [p1 - p0 for p0, p1 in zip(before, trainer.network.params)]
    assert np.isclose(np.sqrt(sum(np.sum(m * m) for m in moved)), 1e-3)
    for m, g in zip(moved, grads):  # same direction as the gradient
        np.testing.assert_allclose(m, -g * 1e-3 / norm, atol=1e-15)


def test_l2_decays_weights_not_biases():
    rng = np.random.default_rng(3)
    X, T = rng.normal(size=(5, 3)), one_hot_targets(rng.integers(0, 2, 5), 2, "sigmoid")
    trainer = make_trainer(lr=0.1, l2=0.01, batch_size=0)
    grads = trainer.network.gradients(X, T)
    before = [p.copy() for p in trainer.network.params]
    trainer.step(X, T)
    for k, (p0, p1, g) in enumerate(zip(before, trainer.network.params, grads)):
        decay = 0.01 * p0 if k % 2 == 0 else 0.0
        np.testing.assert_allclose(p1, p0 - 0.1 * (g + decay), atol=1e-15)


def test_divergence_is_reported(iris_split):
    train_ds, test_ds = iris_split
    with pytest.raises(BpHwError, match="diverged at epoch"):
        train(train_ds, test_ds, TrainConfig(activation="identity", output_activation="identity", lr=1e3, epochs=50))


def test_train_returns_a_valid_float_model(iris_split):
    train_ds, test_ds = iris_split
    model = train(train_ds, test_ds, TrainConfig(epochs=2, layers=[4, 5, 6, 3], activation="tanh"))
    assert isinstance(model, FloatModel)
    assert [w.shape for w in model.weights] == [(5, 4), (6, 5), (3, 6)]
    assert model.activations == ["tanh", "tanh", "tanh"]
    out = model.predict_proba(test_ds.X)
    assert out.shape == (45, 3) and np.all(np.abs(out) <= 1)


@pytest.mark.parametrize("hidden, output, loss", [
    ("sigmoid", "sigmoid", "mse"), ("tanh", "identity", "mse"), ("relu", "softmax", "cross_entropy"),
    ("sigmoid", "sigmoid", "cross_entropy"),
])
def test_gradients_match_pytorch_autograd(hidden, output, loss):
    """An independent implementation of the same cost, differentiated by PyTorch (when installed)."""
    torch = pytest.importorskip("torch")
    net, X, T = random_problem(hidden, output, loss, seed=5)
    params = [torch.tensor(p, requires_grad=True) for p in net.params]
    fns = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z,
           "softmax": lambda z: torch.softmax(z, dim=1)}
    a = torch.tensor(X)
    for l, act in enumerate(net.activations):
        z = a @ params[2 * l].T + params[2 * l + 1]
        a = fns[act.name](z)
    t = torch.tensor(T)
    if loss == "mse":
        cost = 0.5 * ((a - t) ** 2).sum(dim=1).mean()
    elif output == "softmax":
        cost = -(t * torch.log(a)).sum(dim=1).mean()
    else:
        cost = torch.nn.functional.binary_cross_entropy(a, t, reduction="sum") / X.shape[0]
    cost.backward()
    assert np.isclose(cost.item(), net.cost(X, T), rtol=1e-12)
    for ours, p in zip(net.gradients(X, T), params):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-10, atol=1e-13)
