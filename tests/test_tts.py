import pytest

from simulator.cli import main
from simulator.errors import ServesimError
from simulator.results.summary import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.studies.tts import TtsPoint, frontier, load_accuracy


def test_tts_section_time_to_last_sample_and_cost_per_question():
    r = simulate(Scenario(model="qwen3-0.6b", num_requests=6, samples_per_prompt=3, rate=2.0,
                          output_tokens="uniform:10:200", output_budget_tokens=120))
    summary = build_summary(r)
    t = summary["tts"]
    rec = r.recorder
    last = rec.finish_s.reshape(6, 3).max(axis=1) - rec.arrival_s[::3]
    assert t["questions"] == 6 and t["questions_completed"] == 6
    assert t["mean_time_to_last_sample_ms"] == pytest.approx(last.mean() * 1e3)
    assert t["usd_per_question"] == pytest.approx(summary["price"]["usd_total"] / 6)
    assert rec.output_tokens.max() <= 120


def test_plain_runs_have_no_tts_section():
    assert "tts" not in build_summary(simulate(Scenario(num_requests=5)))


def test_frontier_uses_accuracy_when_given():
    pts = [TtsPoint("a", 1, 1, 1.0, 0, 0, 9.0, 0.5), TtsPoint("b", 1, 1, 2.0, 0, 0, 1.0, 0.4),
           TtsPoint("c", 1, 1, 3.0, 0, 0, 5.0, 0.9)]
    assert frontier(pts) == [0, 2]  # b costs more than a and is less accurate
    no_acc = [TtsPoint(p.model, 1, 1, p.eflops_per_question, 0, 0, p.p50_time_to_last_sample_ms, None) for p in pts]
    assert frontier(no_acc) == [0, 1]  # without accuracy: faster at higher cost stays


def test_accuracy_table_errors(tmp_path):
    f = tmp_path / "acc.csv"
    f.write_text("model,samples,budget,accuracy\nqwen3-8b,4,1024,1.5\n")
    with pytest.raises(ServesimError, match="line 2: accuracy=1.5 must be in"):
        load_accuracy(f)
    f.write_text("model,samples\n")
    with pytest.raises(ServesimError, match="missing column"):
        load_accuracy(f)
    f.write_text("model,samples,budget,accuracy\nQwen3-8B,4,1024,0.7\n")
    assert load_accuracy(f) == {("qwen3-8b", 4, 1024): 0.7}


def test_tts_cli(capsys, tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,samples,budget,accuracy\nqwen3-0.6b,2,256,0.3\n")
    code = main(["tts", "--models", "qwen3-0.6b", "--samples", "1,2", "--budgets", "256", "--accuracy", str(acc),
                 "--num-requests", "4", "--prompt-tokens", "128", "--output-tokens", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "0.300" in out and out.count("qwen3-0.6b") == 2
    assert main(["tts", "--models", "qwen3-0.6b", "--samples", "0"]) == 2
