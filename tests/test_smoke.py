from simulator.cli import main


def test_simulate_default_runs(capsys):
    assert main(["simulate", "--num-requests", "50"]) == 0
    out = capsys.readouterr().out
    assert "Successful requests" in out
