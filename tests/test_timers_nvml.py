import types

import pytest

from profiles.nvml import open_sampler
from profiles.timers import TimingPlan, summarise_times, time_calls_cpu, time_calls_cuda


class StepClock:
    """Advances by the scripted durations: call k takes durations[k] seconds."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def clock(self):
        return self.now

    def fn(self, i):
        self.now += self.durations[self.calls]
        self.calls += 1


def test_cpu_timer_warmup_and_min_repeats():
    c = StepClock([9.0, 9.0, 1.0, 2.0, 3.0, 4.0])
    times = time_calls_cpu(c.fn, TimingPlan(warmup=2, min_repeats=3, max_repeats=10, budget_s=0.5), clock=c.clock)
    assert times == [1.0, 2.0, 3.0]  # warm-ups excluded; budget already spent after 3 repeats


def test_cpu_timer_budget_and_max():
    c = StepClock([0.1] * 100)
    times = time_calls_cpu(c.fn, TimingPlan(warmup=0, min_repeats=2, max_repeats=4, budget_s=10.0), clock=c.clock)
    assert len(times) == 4
    c = StepClock([0.1] * 100)
    times = time_calls_cpu(c.fn, TimingPlan(warmup=0, min_repeats=2, max_repeats=50, budget_s=0.45), clock=c.clock)
    assert len(times) == 5  # 0.1 s each: the 5th brings the total to 0.5 >= 0.45


def test_cpu_timer_rotates_buffer_index():
    seen = []
    time_calls_cpu(seen.append, TimingPlan(warmup=1, min_repeats=3, max_repeats=3, budget_s=1.0))
    assert seen == [0, 1, 2, 3]


class FakeCuda:
    def __init__(self, elapsed_ms):
        self.elapsed = list(elapsed_ms)
        self.syncs = 0
        fake = self

        class Event:
            def __init__(self, enable_timing):
                assert enable_timing
                self.recorded = False

            def record(self):
                self.recorded = True

            def elapsed_time(self, end):
                assert self.recorded and end.recorded
                return fake.elapsed.pop(0)

        self.Event = Event

    def synchronize(self):
        self.syncs += 1


def test_cuda_event_timer_converts_ms_and_syncs():
    cuda = FakeCuda([2.0, 4.0, 6.0])
    calls = []
    times = time_calls_cuda(calls.append, TimingPlan(warmup=2, min_repeats=3, max_repeats=3, budget_s=1.0), cuda)
    assert times == pytest.approx([0.002, 0.004, 0.006])
    assert calls == [0, 1, 2, 3, 4] and cuda.syncs == 2


def test_summary_exact():
    s = summarise_times([1e-6, 2e-6, 3e-6, 4e-6, 5e-6])
    assert s["time_median_us"] == pytest.approx(3.0)
    assert s["time_p10_us"] == pytest.approx(1.4)
    assert s["time_p90_us"] == pytest.approx(4.6)
    assert s["time_mean_us"] == pytest.approx(3.0)
    assert s["time_std_us"] == pytest.approx(2 ** 0.5)
    with pytest.raises(ValueError):
        summarise_times([1.0, float("nan")])


def fake_nvml(power_mw=(250_000,), fail_init=False):
    powers = list(power_mw)
    mod = types.SimpleNamespace(NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1, NVML_TEMPERATURE_GPU=0, shutdown=[])

    def init():
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: mod.shutdown.append(True)
    mod.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    mod.nvmlDeviceGetPowerUsage = lambda h: powers.pop(0) if len(powers) > 1 else powers[0]
    mod.nvmlDeviceGetClockInfo = lambda h, kind: 1980 if kind == 0 else 2619
    mod.nvmlDeviceGetTemperature = lambda h, kind: 61
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=1234)
    mod.nvmlSystemGetDriverVersion = lambda: b"550.54"
    mod.nvmlDeviceGetMaxClockInfo = lambda h, kind: 1980
    mod.nvmlDeviceGetPowerManagementLimit = lambda h: 700_000
    return mod


def test_nvml_window_means_and_energy():
    sampler, reason = open_sampler(nvml=fake_nvml(power_mw=(200_000, 300_000)))
    assert reason is None
    start = sampler.begin_window()  # samples 200 W
    stats = sampler.end_window(start, time_per_call_s=0.01)  # samples 300 W
    assert stats["power_mean_w"] == pytest.approx(250.0)
    assert stats["energy_per_call_j"] == pytest.approx(2.5)
    assert stats["sm_clock_mhz"] == 1980 and stats["mem_clock_mhz"] == 2619
    assert stats["temperature_c"] == 61 and stats["memory_used_bytes"] == 1234
    assert sampler.static_info()["driver"] == "550.54"
    assert sampler.static_info()["power_limit_w"] == 700.0


def test_nvml_thread_samples_and_stops():
    nvml = fake_nvml()
    sampler, _ = open_sampler(nvml=nvml, interval_s=0.001)
    sampler.start()
    import time

    time.sleep(0.02)
    sampler.stop()
    assert len(sampler._samples) >= 2 and nvml.shutdown == [True]


def test_nvml_unavailable_says_why():
    sampler, reason = open_sampler(nvml=fake_nvml(fail_init=True))
    assert sampler is None and "NVML unavailable" in reason and "Shared Library" in reason
