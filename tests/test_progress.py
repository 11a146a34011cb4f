import io

from pipeline.jobs.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_average_step_time_times_steps_left() -> None:
    clock = FakeClock()
    bar = Progress(4, "days", stream=io.StringIO(), tty=True, clock=clock)
    assert bar.eta() is None
    clock.now += 30
    bar.update()
    assert bar.eta() == 90
    clock.now += 10
    bar.update()
    assert bar.eta() == 40
    assert "ETA 00:40" in bar.render() and "2/4" in bar.render()


def test_tty_redraws_in_place_and_ends_with_a_newline() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(2, "days", stream=out, tty=True, width=10, clock=clock)
    bar.update(note="2026-11-25")
    clock.now += 65
    bar.update()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "[##########] 2/2" in text and "done in 01:05" in text and "2026-11-25" in text


def test_non_tty_writes_lines_at_most_every_interval_and_the_last() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(10, "days", stream=out, tty=False, interval=60, clock=clock)
    for _ in range(9):
        clock.now += 10
        bar.update()
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["1/10", "7/10"]  # t=10s, then t=70s
    clock.now += 1
    bar.update()
    assert out.getvalue().splitlines()[-1].split()[2] == "10/10"
    assert "\r" not in out.getvalue()


def test_format_duration() -> None:
    assert format_duration(59.6) == "01:00"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-3) == "00:00"
