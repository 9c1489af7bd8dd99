"""``rerank-rag simulate``: output, options and errors."""

from __future__ import annotations

import re

import pytest

from rerank_rag.cli import main as cli_main
from rerank_rag.jointrank import simulate


def run(capsys, *args):
    code = cli_main(["simulate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(out):
    return [line.split() for line in out.splitlines()[2:] if line.strip()]


def test_default_command_prints_ndcg_top1_calls_depth(capsys):
    code, out, err = run(
        capsys,
        "--n",
        "100",
        "--k",
        "20",
        "--r",
        "4",
        "--design",
        "auto",
        "--aggregator",
        "pagerank",
        "--runs",
        "20",
        "--seed",
        "0",
    )
    assert code == 0, err
    assert "block ranker: perfect" in out
    header = out.splitlines()[1]
    for col in ("nDCG@10", "top-1", "calls", "depth"):
        assert col in header
    (row,) = rows(out)
    assert row[0] == "auto:equi-replicate" and row[1] == "pagerank"
    ndcg, top1, calls, depth = float(row[2]), float(row[4]), float(row[5]), float(row[6])
    expected = simulate(100, 20, 4, "auto", "pagerank", runs=20, seed=0)
    assert ndcg == pytest.approx(expected.ndcg10, abs=5e-4)
    assert top1 == pytest.approx(expected.top1, abs=5e-3)
    assert (calls, depth) == (20.0, 1.0)


def test_noise_and_position_bias_options(capsys):
    code, out, _ = run(capsys, "--runs", "10", "--noise", "0.2", "--position-bias", "0.1")
    assert code == 0
    assert "noisy (sigma=0.2, position bias=0.1)" in out
    (row,) = rows(out)
    clean = simulate(100, 20, 4, runs=10)
    assert float(row[2]) < clean.ndcg10


def test_several_designs_and_all_aggregators(capsys):
    code, out, _ = run(
        capsys,
        "--n",
        "55",
        "--k",
        "10",
        "--r",
        "2",
        "--runs",
        "3",
        "--design",
        "auto,random",
        "--aggregator",
        "all",
    )
    assert code == 0
    table = rows(out)
    assert len(table) == 12
    assert {r[0] for r in table} == {"auto:triangular", "random"}


def test_large_n(capsys):
    code, out, _ = run(capsys, "--n", "3000", "--k", "100", "--r", "3", "--runs", "1")
    assert code == 0
    (row,) = rows(out)
    assert float(row[5]) == 90.0  # 3 * 3000 / 100 blocks


@pytest.mark.parametrize(
    "args,message",
    [
        (["--k", "1"], "block size"),
        (["--r", "0"], "replicas"),
        (["--aggregator", "trueskill"], "unknown aggregator"),
        (["--design", "nope"], "unknown design"),
        (["--design", "latin", "--n", "99", "--k", "10", "--runs", "1"], "does not apply"),
        (["--runs", "0"], "runs"),
        (["--noise", "-1"], "noise"),
    ],
)
def test_bad_options_exit_2_with_a_message(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert re.search(message, err)


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["simulate", "--help"])
    assert exc.value.code == 0
    assert "--position-bias" in capsys.readouterr().out
