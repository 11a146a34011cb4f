import re
import signal
import threading
import time

import pytest

from pipeline.errors import BadInputError
from pipeline.parsing.budget import parse_budget

CATASTROPHIC = re.compile(r"(a+)+$")  # exponential backtracking: runs for hours on 40 a's and a b


def _spin_forever_in_regex() -> None:
    CATASTROPHIC.search("a" * 40 + "b")


def _spin_forever_in_python() -> None:
    while True:
        pass


@pytest.mark.timeout(60)
def test_main_thread_budget_interrupts_one_long_regex_search() -> None:
    with pytest.raises(BadInputError) as err, parse_budget(0.2, "feed.xml"):
        _spin_forever_in_regex()
    assert err.value.kind == "too_slow"
    assert "feed.xml" in err.value.message and "CPU" in err.value.message
    assert err.value.fields["budget_seconds"] == 0.2


@pytest.mark.timeout(60)
def test_a_parser_catching_exception_cannot_swallow_the_budget() -> None:
    def parser_with_catch_all() -> None:
        while True:
            try:
                _spin_forever_in_regex()
            except Exception:  # what feedparser does around its handlers
                continue

    with pytest.raises(BadInputError, match="budget"), parse_budget(0.2):
        parser_with_catch_all()


@pytest.mark.timeout(60)
def test_other_threads_get_a_wall_clock_watchdog() -> None:
    result: list[BaseException | str] = []

    def work() -> None:
        try:
            with parse_budget(0.3, "in-a-thread"):
                _spin_forever_in_python()
        except BadInputError as exc:
            result.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(result[0], BadInputError) and result[0].kind == "too_slow"
    assert "wall-clock" in result[0].message


def test_work_within_the_budget_is_untouched_and_leaves_no_timer() -> None:
    with parse_budget(5.0):
        total = sum(range(1000))
    assert total == 499500
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    time.sleep(0.01)  # a late SIGPROF would find an inert handler, never the default (which kills)
    assert signal.getsignal(signal.SIGPROF) not in (signal.SIG_DFL, None)


def test_a_finished_thread_budget_never_fires_later() -> None:
    def work() -> None:
        with parse_budget(0.05):
            pass
        time.sleep(0.3)  # past the budget: the withdrawn watchdog must not raise here

    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(work, errors))
    thread.start()
    thread.join(10)
    assert errors == []


def _capture(fn: object, errors: list[BaseException]) -> None:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        errors.append(exc)


def test_no_budget_and_nested_budgets_defer_to_the_outer_one() -> None:
    with parse_budget(None), parse_budget(0):
        pass
    with pytest.raises(BadInputError), parse_budget(0.2, "outer"), parse_budget(100, "inner"):
        _spin_forever_in_python()


def test_airflow_style_sigalrm_timeout_is_left_alone() -> None:
    """Airflow's execution_timeout is SIGALRM + ITIMER_REAL in a task's main thread: ours leaves both."""
    fired: list[int] = []

    def airflow_timeout(signum: int, frame: object) -> None:
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, airflow_timeout)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with parse_budget(1.0):
            sum(range(1000))
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < remaining <= 30
        assert signal.getsignal(signal.SIGALRM) is airflow_timeout
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


@pytest.mark.timeout(60)
def test_a_swallowed_expiry_fires_again_until_the_block_stops() -> None:
    """Lost in a weakref callback or a bare except, the exception comes again: the timer keeps firing."""
    swallowed = []

    def swallows_the_first_one() -> None:
        while True:
            try:
                _spin_forever_in_python()
            except BaseException:
                swallowed.append(1)
                if len(swallowed) > 1:
                    raise

    with pytest.raises(BadInputError, match="budget"), parse_budget(0.2):
        swallows_the_first_one()
    assert len(swallowed) == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("in_thread", [False, True])
def test_a_block_that_finishes_after_swallowing_its_expiry_is_still_too_slow(in_thread: bool) -> None:
    """Its result may be incomplete (the parser lost whatever it was doing when the budget ran out)."""

    def partial() -> str:
        try:
            _spin_forever_in_python()
        except BaseException:
            return "half a feed"
        return "never"

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with parse_budget(0.2):
                partial()
        except BaseException as exc:
            errors.append(exc)

    if in_thread:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
    else:
        run()
    assert len(errors) == 1 and isinstance(errors[0], BadInputError) and errors[0].kind == "too_slow"
