import io

from pipeline.jobs.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_average_step_time_times_steps_left() -> None:
    clock = FakeClock()
    bar = Progress(4, "days", stream=io.StringIO(), tty=False, clock=clock)
    assert bar.eta() is None
    clock.now += 30
    bar.update()
    assert bar.eta() == 90
    clock.now += 10
    bar.update()
    assert bar.eta() == 40
    assert "ETA 00:40" in bar.render() and "2/4" in bar.render()


def test_a_terminal_gets_rich_bar_redrawn_in_place_with_the_cursor_restored() -> None:
    out, clock = io.StringIO(), FakeClock()
    with Progress(2, "days", stream=out, tty=True, clock=clock) as bar:
        clock.now += 5
        bar.update(note="2026-11-25")
        clock.now += 60
        bar.update(note="2026-11-26")
    text = out.getvalue()
    assert "\x1b[?25l" in text and text.rstrip().endswith("\x1b[?25h")  # cursor hidden, then shown again
    assert "2/2" in text and "100%" in text and "done in 01:05" in text and "2026-11-26" in text
    assert "1/2" in text and "ETA 00:05" in text and "2026-11-25" in text  # step 1, with its ETA already


def test_a_run_stopped_half_way_still_gives_the_cursor_back() -> None:
    out = io.StringIO()
    try:
        with Progress(10, "days", stream=out, tty=True) as bar:
            bar.update()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert out.getvalue().rstrip().endswith("\x1b[?25h")


def test_non_tty_writes_lines_at_most_every_interval_and_the_last() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(10, "days", stream=out, tty=False, interval=60, clock=clock)
    for _ in range(9):
        clock.now += 10
        bar.update()
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/10", "7/10"]  # t=10s, then t=70s
    clock.now += 1
    bar.update()
    assert out.getvalue().splitlines()[-1].split()[1] == "10/10"
    assert "done in 01:31" in out.getvalue() and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_format_duration() -> None:
    assert format_duration(59.6) == "01:00"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-3) == "00:00"
