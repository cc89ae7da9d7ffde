"""Reconciling a lost create, every branch: adopt, wait, requeue, and the two exits."""

from __future__ import annotations

from tests.unit.fakes import World, make_job, world
from tests.unit.test_poll_steps import poll, submitted
from wanedit.dashscope import FinalError, RetryableError, TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import TASK_LIFETIME_SECONDS
from wanedit.usecases.reconcile import CLAIM_GRACE_SECONDS, RECONCILE_WINDOW_SECONDS, reconcile

PROMPT = "make it snow"


def reconciling(w: World) -> Job:
    """A job whose create was sent at the clock's now and whose answer was lost."""
    job = make_job(w, prompt=PROMPT)
    w.store.put_new(job)
    w.store.acquire_slot(job.job_id, 2, w.clock.now())
    now = w.clock.now()
    w.store.transition(
        job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=now, next_poll_at=now, submitting_since=now
    )
    moved = w.store.transition(
        job.job_id, [JobState.SUBMITTING], JobState.RECONCILING, now=now, next_poll_at=now
    )
    assert moved is not None
    return moved


def look(w: World, job: Job, after: float) -> tuple[bool, Job]:
    w.clock.advance(after)
    found = reconcile(w.svc, w.store.get(job.job_id))  # type: ignore[arg-type]
    return found, w.store.get(job.job_id)  # type: ignore[return-value]


def test_a_task_the_job_claimed_before_a_crash_is_adopted_at_once() -> None:
    w = world()
    job = reconciling(w)
    task = w.api.unclaimed_task(at=w.clock.now() + 1, status=TaskStatus.RUNNING)
    w.store.claim_task(task.task_id, job.job_id, w.clock.now())
    found, after = look(w, job, 5)
    assert found and after.state is JobState.SUBMITTED and after.task_id == task.task_id
    assert after.task_status == "RUNNING" and w.api.calls["get"] == 0


def test_a_succeeded_task_with_our_prompt_is_adopted_and_claimed() -> None:
    w = world()
    job = reconciling(w)
    task = w.api.unclaimed_task(at=w.clock.now() + 2, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    found, after = look(w, job, CLAIM_GRACE_SECONDS + 5)
    assert found and after.task_id == task.task_id and w.store.task_owner(task.task_id) == job.job_id


def test_of_two_matches_the_closest_in_time_is_adopted() -> None:
    w = world()
    job = reconciling(w)
    start = w.clock.now()
    far = w.api.unclaimed_task(at=start + 40, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    near = w.api.unclaimed_task(at=start + 3, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    found, after = look(w, job, 90)
    assert found and after.task_id == near.task_id and w.store.task_owner(far.task_id) is None


def test_tasks_of_other_jobs_other_prompts_or_other_times_are_never_adopted() -> None:
    w = world()
    job = reconciling(w)
    start = w.clock.now()
    claimed = w.api.unclaimed_task(at=start + 1, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    w.store.claim_task(claimed.task_id, "j-another", start)
    w.api.unclaimed_task(at=start + 2, status=TaskStatus.SUCCEEDED, prompt="another workload's edit")
    w.api.unclaimed_task(at=start - 300, status=TaskStatus.SUCCEEDED, prompt=PROMPT)  # before the attempt
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS)
    assert not found and after.state is JobState.QUEUED  # no task was made: queued again
    assert w.store.slot_holders() == {} and after.submitting_since is None


def test_a_young_or_unfinished_candidate_makes_the_job_wait_holding_its_slot() -> None:
    w = world()
    job = reconciling(w)
    w.api.unclaimed_task(at=w.clock.now() + 1, status=TaskStatus.RUNNING)
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS + 60)
    assert not found and after.state is JobState.RECONCILING and job.job_id in w.store.slot_holders()
    assert after.next_poll_at == w.clock.now() + 15.0


def test_a_candidate_younger_than_the_claim_grace_is_not_even_queried() -> None:
    w = world()
    job = reconciling(w)
    w.api.unclaimed_task(at=w.clock.now() + 1, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    found, after = look(w, job, 2)
    assert not found and after.state is JobState.RECONCILING and w.api.calls["get"] == 0


def test_a_candidate_whose_query_fails_is_waited_for() -> None:
    w = world()
    job = reconciling(w)
    w.api.unclaimed_task(at=w.clock.now() + 1, status=TaskStatus.SUCCEEDED, prompt=PROMPT)
    w.api.fail_next("get", RetryableError(500, None, "oops", None))
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS + 1)
    assert not found and after.state is JobState.RECONCILING


def test_a_failed_candidate_is_never_adopted_and_the_job_is_queued_again() -> None:
    w = world()
    job = reconciling(w)
    w.api.unclaimed_task(at=w.clock.now() + 1, status=TaskStatus.FAILED)
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS)
    assert not found and after.state is JobState.QUEUED


def test_nothing_in_the_list_yet_looks_again_within_the_window() -> None:
    w = world()
    job = reconciling(w)
    found, after = look(w, job, 10)
    assert not found and after.state is JobState.RECONCILING and after.next_poll_at == w.clock.now() + 15.0


def test_a_list_that_fails_for_a_while_is_tried_again() -> None:
    w = world()
    job = reconciling(w)
    w.api.fail_next("list", RetryableError(503, None, "busy", None))
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS * 10)
    assert not found and after.state is JobState.RECONCILING and job.job_id in w.store.slot_holders()


def test_a_list_refused_for_good_ends_the_job_once_the_window_has_passed() -> None:
    w = world()
    job = reconciling(w)
    w.api.fail_next("list", FinalError(403, "AccessDenied", "no list permission", None))
    _, waiting = look(w, job, 10)
    assert waiting.state is JobState.RECONCILING  # maybe a blip: look again
    w.api.fail_next("list", FinalError(403, "AccessDenied", "no list permission", None))
    _, after = look(w, job, RECONCILE_WINDOW_SECONDS)
    assert after.state is JobState.FAILED and after.error_code == "AccessDenied"
    assert w.store.slot_holders() == {} and w.api.calls["create"] == 0
    report = w.objects.json("failed/team/clip.json")
    assert "does not create another" in report["error"]["message"]


def test_an_attempt_older_than_the_task_lifetime_ends_expired() -> None:
    w = world()
    job = reconciling(w)
    found, after = look(w, job, TASK_LIFETIME_SECONDS)
    assert not found and after.state is JobState.EXPIRED and after.error_code == "ReconcileExpired"
    assert w.api.calls["list"] == 0 and w.store.slot_holders() == {}


def test_every_list_window_is_narrow_whatever_the_attempts_age() -> None:
    w = world()
    job = reconciling(w)
    look(w, job, TASK_LIFETIME_SECONDS - 60)
    assert w.api.list_windows and max(w.api.list_windows) <= 5 * 60  # never near the API's 24 h limit


def test_another_workloads_task_with_our_prompt_is_never_adopted_once_our_key_is_known() -> None:
    w = world()
    w.store.note_key_identities({"key-ours"}, w.clock.now())  # learned from our earlier tasks' listing
    job = reconciling(w)
    theirs = w.api.unclaimed_task(
        at=w.clock.now() + 1, status=TaskStatus.SUCCEEDED, prompt=PROMPT, key="key-b"
    )
    found, after = look(w, job, RECONCILE_WINDOW_SECONDS)
    assert not found and after.state is JobState.QUEUED and after.task_id is None  # none of ours: made again
    assert w.store.task_owner(theirs.task_id) is None


def test_our_key_is_learned_from_the_list_of_our_tasks() -> None:
    w = world()
    submitted(w)  # a lone PENDING task: listed once, to learn the key it carries
    poll(w)
    assert w.store.key_identities() == {"key-ours"} and w.api.calls["get"] == 1  # still queried as usual
