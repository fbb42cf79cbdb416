"""servesim's simulator: a scenario in, a simulated serving run and its summary out.

Rooms (one folder per concept; imports run one way, checked by tests/test_architecture.py):
    cli/          the `servesim` command line, one module per subcommand
    studies/      many runs: compare, plan, test-time scaling sweeps, roofline figures
    validation/   real engine runs and profiling sessions checked against the simulator
    results/      the run summary (vLLM bench-serve metrics), result files, text tables
    accounting/   Kinetics eFLOPs, energy and price of a run
    run.py        the composition root: builds one run from a Scenario and runs it
    scenario.py   the Scenario record, its validation and TOML loader
    kv/ speculative/ moe/   feature components passed to the engine
    engine/       replica loop, schedulers, sequence pool, KV blocks, memory plan, recorder
    cost/         the only place step shapes become seconds: ops, roofline, profiled models
    models/ workload/       model specs from config.json; arrivals, lengths and traces
    errors.py     the user-error type
Direction: cli -> studies/validation -> results -> accounting -> run -> scenario -> features ->
engine -> cost -> models/workload -> errors; hardware/ and profiles/ sit below all of them.
`import simulator` loads nothing: each room is imported when used.
"""
