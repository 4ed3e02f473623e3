"""The GitLab connector: the shared contract (keyset and offset instances), and the wire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratmap.connectors.base import AuthError, FatalSourceError, Window
from stratmap.connectors.gitlab import GitlabConnector, assignment_note
from stratmap.connectors.registry import build_connector
from stratmap.flows.pipeline import judge_plan, sync_plan_source
from stratmap.models.plan import GitlabSource
from stratmap.models.planfile import load_plan
from stratmap.models.records import Page, StatusCategory
from stratmap.models.store import Store
from tests.contract.suite import T0, ConnectorContract, make_items
from tests.fakes.gitlab_api import (
    HOST,
    PROJECT,
    FakeGitlab,
    activated,
    epic,
    issue,
    label_event,
    milestone,
    note,
    state_event,
)

EVERYTHING = Window(since=None, until=T0 + timedelta(days=60))
LIST_PATH = "/api/v4/projects/northwind%2Fwebsite/issues"


class TestGitlabContract(ConnectorContract):
    """GitLab 18.3 and later: issues paged by keyset."""

    @pytest.fixture
    def harness(self) -> Iterator[FakeGitlab]:
        yield from activated(FakeGitlab(page_size=50))


class TestOlderGitlabContract(ConnectorContract):
    """GitLab before 18.3: keyset refused with 405, issues swept by updated_after."""

    @pytest.fixture
    def harness(self) -> Iterator[FakeGitlab]:
        yield from activated(FakeGitlab(page_size=50, keyset=False, concurrency=1))


@pytest.fixture
def gitlab() -> Iterator[FakeGitlab]:
    yield from activated(FakeGitlab())


def fetch(fake: FakeGitlab, window: Window = EVERYTHING) -> list[Page]:
    connector = fake.connector()
    try:
        return list(connector.fetch(window))
    finally:
        connector.close()


# -- the wire ---------------------------------------------------------------------------

def test_the_issue_list_asks_by_updated_ascending_since_the_window_by_keyset(
        gitlab: FakeGitlab) -> None:
    gitlab.seed(make_items(3))
    since = datetime(2026, 9, 1, 12, 30, 15, 999_000, tzinfo=UTC)
    fetch(gitlab, Window(since=since, until=EVERYTHING.until))
    first = gitlab.calls("issues")[0]
    assert first.url.raw_path.split(b"?")[0].decode() == LIST_PATH  # the path, url-encoded
    assert dict(first.url.params) == {
        "scope": "all", "order_by": "updated_at", "sort": "asc", "per_page": "100",
        "updated_after": "2026-09-01T12:30:15Z", "pagination": "keyset",
    }
    assert "private-token" not in first.headers


def test_a_numeric_project_id_is_used_as_is() -> None:
    fake = FakeGitlab()
    with fake.router:
        fake.seed(make_items(1))
        connector = GitlabConnector("shop", GitlabSource(kind="gitlab", project="42", url=HOST))
        pages = list(connector.fetch(EVERYTHING))
        connector.close()
    assert fake.requests[0].url.path == "/api/v4/projects/42/issues"
    assert len(pages[0].items) == 1


def test_the_token_goes_in_the_private_token_header() -> None:
    fake = FakeGitlab(token="glpat-secret")
    with fake.router:
        fake.seed(make_items(2))
        pages = fetch(fake)
    assert sum(len(p.items) for p in pages) == 2
    assert {r.headers["private-token"] for r in fake.requests} == {"glpat-secret"}
    assert all("authorization" not in r.headers for r in fake.requests)


def test_keyset_pages_follow_the_cursor_link() -> None:
    fake = FakeGitlab(page_size=10)
    with fake.router:
        fake.seed(make_items(25))
        pages = fetch(fake)
    listed = fake.calls("issues")
    assert len(listed) == 3
    assert "cursor" not in listed[0].url.params
    assert all("cursor" in r.url.params and "page" not in r.url.params for r in listed[1:])
    assert all(r.url.params["pagination"] == "keyset" for r in listed)
    assert sorted(i.key for p in pages for i in p.items) == sorted(f"shop#{n}"
                                                                   for n in range(1, 26))


def test_an_instance_without_keyset_is_swept_by_updated_after_and_asked_once() -> None:
    fake = FakeGitlab(page_size=10, keyset=False)
    with fake.router:
        fake.seed(make_items(25))
        connector = fake.connector()
        pages = list(connector.fetch(EVERYTHING))
        made = len(fake.requests)
        keys = connector.reconcile()
        connector.close()
    listed = fake.calls("issues")
    assert sum(p.requests for p in pages) == made  # the refused keyset try counts too
    assert [r.url.params.get("pagination") for r in listed].count("keyset") == 1
    assert listed[0].url.params["pagination"] == "keyset"
    assert "updated_after" in listed[2].url.params  # the window moves, not the offset
    assert sorted(i.key for p in pages for i in p.items) == sorted(f"shop#{n}"
                                                                   for n in range(1, 26))
    assert keys == frozenset(f"shop#{n}" for n in range(1, 26))


def test_an_issue_maps_epic_milestone_people_and_dates(gitlab: FakeGitlab) -> None:
    gitlab.add(issue(6, title="Checkout", created=T0, updated=T0 + timedelta(hours=2),
                     labels=["website-launch", "Workflow::Doing"], assignees=["erin", "frank"],
                     author="grace", milestone_=milestone(3, "v2 launch", due="2027-01-15"),
                     epic_=epic(5), due_date="2026-12-01", weight=3),
               labels=[label_event(1, 6, "Workflow::Doing", "add", by="erin", at=T0)])
    (page,) = fetch(gitlab)
    (item,) = page.items
    assert item.key == "shop#6"
    assert (item.status, item.status_category) == ("Workflow::Doing", StatusCategory.IN_PROGRESS)
    assert item.parent == "5" and item.container == "v2 launch"
    assert item.fields == {"milestone_due": "2027-01-15"}
    assert item.due == datetime(2026, 12, 1, tzinfo=UTC)
    assert item.points == 3.0
    assert item.assignee == "erin" and item.reporter == "grace"
    assert item.labels == ("website-launch", "Workflow::Doing")
    assert item.url == f"{HOST}/{PROJECT}/-/issues/6"
    assert item.item_type == "issue" and item.flags == ()
    assert {(a.account_id, a.display_name) for a in page.accounts} >= {
        ("erin", "Erin"), ("frank", "Frank"), ("grace", "Grace")}
    (raw,) = page.raw
    assert raw.endpoint.startswith(f"{HOST}{LIST_PATH}?")
    assert set(raw.payload) == {"issue", "resource_state_events", "resource_label_events",
                                "notes", "links"}


def test_history_replays_state_and_label_events_and_skips_system_notes(
        gitlab: FakeGitlab) -> None:
    at = T0 + timedelta(days=1)
    gitlab.add(
        issue(9, title="t", created=T0, updated=at + timedelta(days=5), state="closed",
              closed_at=at + timedelta(days=5), notes=1),
        labels=[label_event(11, 9, "workflow::doing", "add", by="erin", at=at),
                label_event(12, 9, "bug", "add", by="erin", at=at),
                label_event(13, 9, "workflow::doing", "remove", by="erin",
                            at=at + timedelta(days=2))],
        states=[state_event(21, 9, "closed", by="frank", at=at + timedelta(days=2)),
                state_event(22, 9, "reopened", by="frank", at=at + timedelta(days=3)),
                state_event(23, 9, "closed", by="frank", at=at + timedelta(days=5))],
        notes=[note(31, 9, by="frank", at=at, body="closed", system=True),
               note(32, 9, by="alice", at=at + timedelta(hours=3), body="Looks right")],
    )
    (page,) = fetch(gitlab)
    # Closing and dropping the board label at one moment is one change, to closed.
    assert [(c.change_id, c.to_status, c.to_category, c.author) for c in page.changes] == [
        ("label-11", "workflow::doing", StatusCategory.IN_PROGRESS, "erin"),
        ("state-21", "closed", StatusCategory.DONE, "frank"),
        ("state-22", "opened", StatusCategory.TODO, "frank"),
        ("state-23", "closed", StatusCategory.DONE, "frank"),
    ]
    assert [(c.comment_id, c.author, c.body) for c in page.comments] == [
        ("32", "alice", "Looks right")]
    notes_call = gitlab.calls("notes")[0]
    assert dict(notes_call.url.params) == {"sort": "asc", "order_by": "created_at",
                                           "per_page": "100"}


def test_no_notes_request_without_user_notes_and_no_label_events_without_labels() -> None:
    fake = FakeGitlab()
    with fake.router:
        fake.add(issue(1, title="quiet", created=T0, updated=T0))
        connector = GitlabConnector("shop", GitlabSource(kind="gitlab", project=PROJECT,
                                                         url=HOST))
        (page,) = list(connector.fetch(EVERYTHING))
        connector.close()
    assert fake.calls("notes") == [] and fake.calls("resource_label_events") == []
    assert len(fake.calls("resource_state_events")) == 1
    # the list, the state events, the links (an open issue), the milestones (once a sync)
    assert page.requests == 4


def test_an_epic_iid_alone_still_gives_the_parent(gitlab: FakeGitlab) -> None:
    payload = issue(2, title="old payload", created=T0, updated=T0)
    payload.pop("epic")
    payload["epic_iid"] = 12
    gitlab.add(payload)
    (page,) = fetch(gitlab)
    assert page.items[0].parent == "12"


# -- errors and rate limits ---------------------------------------------------------------

def test_a_429_waits_for_retry_after(gitlab: FakeGitlab) -> None:
    gitlab.seed(make_items(2))
    gitlab.fail_next(429, retry_after="30")
    fetch(gitlab)
    assert gitlab.sleeps and gitlab.sleeps[0] >= 30


def test_a_429_without_retry_after_waits_until_ratelimit_reset(gitlab: FakeGitlab) -> None:
    gitlab.seed(make_items(2))
    gitlab.fail_next(429)  # RateLimit-Reset is now + 60
    fetch(gitlab)
    assert gitlab.sleeps[0] >= 60


def test_refused_credentials_name_the_source_and_are_not_retried(gitlab: FakeGitlab) -> None:
    gitlab.fail_next(401, times=3)
    with pytest.raises(AuthError) as raised:
        fetch(gitlab)
    assert "source 'shop'" in str(raised.value) and "read_api" in str(raised.value)
    assert len(gitlab.requests) == 1 and gitlab.sleeps == []


def test_an_unknown_project_is_fatal_with_a_hint() -> None:
    fake = FakeGitlab()
    with fake.router:
        connector = GitlabConnector("shop", GitlabSource(kind="gitlab", project="nope/nope",
                                                         url=HOST), sleep=fake.sleep)
        with pytest.raises(FatalSourceError) as raised:
            list(connector.fetch(EVERYTHING))
        connector.close()
    assert "HTTP 404" in str(raised.value) and "group/name" in str(raised.value)
    assert fake.sleeps == []


def test_concurrent_issue_reads_give_the_same_pages_as_serial_ones() -> None:
    def pages(concurrency: int) -> list[Page]:
        fake = FakeGitlab(concurrency=concurrency)
        with fake.router:
            fake.seed(make_items(40))
            return [p.model_copy(update={"raw": ()}) for p in fetch(fake)]

    assert pages(1) == pages(8)


# -- wiring -------------------------------------------------------------------------------

def test_the_registry_builds_it_with_or_without_a_token(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def secret(name: str, ref: str) -> str:
        asked.append((name, ref))
        return "glpat-x"

    public = build_connector("shop", GitlabSource(kind="gitlab", project=PROJECT),
                             plan_dir=tmp_path, secret=secret)
    private = build_connector(
        "shop", GitlabSource(kind="gitlab", project=PROJECT, token="env:GITLAB_TOKEN"),
        plan_dir=tmp_path, secret=secret)
    assert isinstance(public, GitlabConnector) and isinstance(private, GitlabConnector)
    assert asked == [("shop", "env:GITLAB_TOKEN")]
    assert private.api.headers["PRIVATE-TOKEN"] == "glpat-x"
    assert "PRIVATE-TOKEN" not in public.api.headers
    assert public.base == "https://gitlab.com/api/v4/projects/northwind%2Fwebsite"
    assert public.kind == "gitlab" and public.ordered and public.resolve({"epic": "5"}) is None


# -- assignee history and closes GitLab recorded no event for ---------------------------------

def test_assignee_history_is_replayed_from_the_assignment_system_notes(
        gitlab: FakeGitlab) -> None:
    at = T0 + timedelta(days=1)
    gitlab.add(
        issue(5, title="t", created=T0, updated=at + timedelta(days=4),
              assignees=["frank", "erin"]),
        notes=[note(41, 5, by="root", at=at, body="assigned to @erin", system=True),
               note(42, 5, by="alice", at=at + timedelta(hours=1), body="assigned to @erin",
                    system=False),  # a comment quoting the text is not an assignment
               note(43, 5, by="root", at=at + timedelta(days=1),
                    body="assigned to @frank and unassigned @erin", system=True),
               note(44, 5, by="root", at=at + timedelta(days=2),
                    body="changed the description", system=True),
               note(45, 5, by="root", at=at + timedelta(days=3), body="unassigned @frank",
                    system=True),
               note(46, 5, by="grace", at=at + timedelta(days=4),
                    body="assigned to @frank, @erin and @dan", system=True)])
    (page,) = fetch(gitlab)
    assert [(a.change_id, a.from_account, a.to_account, a.at, a.author)
            for a in page.assignments] == [
        ("note-41", None, "erin", at, "root"),
        ("note-43", "erin", "frank", at + timedelta(days=1), "root"),
        ("note-45", "frank", None, at + timedelta(days=3), "root"),
        ("note-46", None, "frank", at + timedelta(days=4), "grace"),
    ]
    assert [c.comment_id for c in page.comments] == ["42"]


def test_an_assigned_issue_without_comments_still_has_its_notes_read(
        gitlab: FakeGitlab) -> None:
    gitlab.add(issue(6, title="t", created=T0, updated=T0, assignees=["erin"]),
               notes=[note(51, 6, by="root", at=T0, body="reassigned to @erin", system=True)])
    (page,) = fetch(gitlab)
    assert len(gitlab.calls("notes")) == 1
    assert [(a.from_account, a.to_account) for a in page.assignments] == [(None, "erin")]


@pytest.mark.parametrize(("body", "expected"), [
    ("assigned to @a", (["a"], [], False)),
    ("assigned to @a.b-c and unassigned @d", (["a.b-c"], ["d"], False)),
    ("assigned to @a, @b and @c", (["a", "b", "c"], [], False)),
    ("unassigned @a and @b", ([], ["a", "b"], False)),
    ("reassigned to @a", (["a"], [], True)),
    ("mentioned in issue #4", None),
    ("assigned to nobody in particular", None),
])
def test_assignment_notes_are_read_by_their_shape(
        body: str, expected: tuple[list[str], list[str], bool] | None) -> None:
    assert assignment_note(body) == expected


def test_a_closed_issue_without_state_events_is_closed_at_closed_at_and_flagged(
        gitlab: FakeGitlab) -> None:
    closed = T0 + timedelta(days=3)
    payload = issue(7, title="from 2019", created=T0, updated=closed, state="closed",
                    closed_at=closed)
    payload["closed_by"] = {"id": 9, "username": "frank", "name": "Frank"}
    gitlab.add(payload)  # no resource_state_events: GitLab recorded none before 2020
    (page,) = fetch(gitlab)
    (item,) = page.items
    assert item.status_category is StatusCategory.DONE and item.resolved == closed
    assert [(c.change_id, c.at, c.author, c.to_category) for c in page.changes] == [
        ("state-closed_at", closed, "frank", StatusCategory.DONE)]
    assert item.flags == ("closed without state events: the close is from closed_at",)


def test_a_closed_issue_with_state_events_is_not_given_another_close(
        gitlab: FakeGitlab) -> None:
    closed = T0 + timedelta(days=3)
    gitlab.add(issue(8, title="t", created=T0, updated=closed, state="closed",
                     closed_at=closed),
               states=[state_event(61, 8, "closed", by="erin", at=closed)])
    (page,) = fetch(gitlab)
    assert [c.change_id for c in page.changes] == ["state-61"]
    assert page.items[0].flags == ()


def test_a_plan_over_an_old_gitlab_project_sees_the_close_as_the_last_movement(
        tmp_path: Path, store: Store) -> None:
    closed = T0 + timedelta(days=3)
    fake = FakeGitlab()
    with fake.router:
        for n in (1, 2):
            fake.add(issue(n, title=f"old {n}", created=T0, updated=closed, state="closed",
                           closed_at=closed, milestone_=milestone(3, "v1")))
        (tmp_path / "plan.yaml").write_text(f"""\
version: 1
name: Old project
leader: alice
people: {{alice: {{name: Alice}}}}
sources:
  shop: {{kind: gitlab, project: {PROJECT}, url: "{HOST}"}}
goals:
  - id: g
    title: G
    milestones:
      - {{id: m, title: M, due: 2026-12-01, work: [{{source: shop, milestone: v1}}]}}
""")
        plan = load_plan(tmp_path / "plan.yaml")
        sync_plan_source(plan, "shop", store, plan_dir=tmp_path, started=closed +
                         timedelta(days=1))
    report = judge_plan(plan, store, as_of=closed + timedelta(days=2))
    (milestone_report,) = report.goals[0].milestones
    assert milestone_report.last_movement == closed
    assert milestone_report.status.value == "done"


def test_an_unchanged_issue_of_the_overlap_is_not_read_again(store: Store) -> None:
    """The overlap re-lists the issues updated just before the watermark; one whose
    ``updated_at`` the store holds to the millisecond is left out, and its state events,
    links and notes are not asked for again (up to four requests an issue, every run).
    One that changed since is read whole, and the run then judges just it again."""
    from stratmap.flows.pipeline import sync_source

    fake = FakeGitlab(page_size=50)
    for _ in activated(fake):
        fake.seed(make_items(12))
        fake.add_milestone(1, "v1.0", due="2027-03-01")  # its due date comes every sync
        started = T0 + timedelta(days=30)
        connector = fake.connector()
        try:
            first = sync_source(connector, store, started=started)
            assert first.items == 12
            fake.requests.clear()
            again = sync_source(connector, store, started=started + timedelta(minutes=5),
                                overlap=timedelta(days=400))  # every issue in the overlap
            assert (again.items, again.written, again.changed) == (0, frozenset(), False)
            assert [c for c in fake.requests if "/issues/" in c.url.path] == []
            fake.transition("ITEM-3", at=started + timedelta(minutes=7), author="dev2",
                            to="Done")
            fake.requests.clear()
            last = sync_source(connector, store, started=started + timedelta(minutes=10),
                               overlap=timedelta(days=400))
        finally:
            connector.close()
        key = fake.key_of("ITEM-3")
        assert (last.items, last.written) == (1, frozenset({key}))
        assert {c.url.path.split("/issues/")[1].split("/")[0]
                for c in fake.requests if "/issues/" in c.url.path} == {key.split("#")[-1]}
        item = next(i for i in store.evidence([connector.name]).items if i.key == key)
        assert item.status_category is StatusCategory.DONE
