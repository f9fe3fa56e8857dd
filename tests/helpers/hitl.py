"""Answer a Human-in-the-loop request the way the Airflow API does, for runs of ``dag.test()``.

``dag.test()`` parks a Human-in-the-loop task in *awaiting input* and waits for a response
recorded from outside. :class:`Responder` is that outside: a thread that waits for the request in
the metadata database, then writes the response and resumes the task exactly as the API's
``PATCH .../hitlDetails`` handler does (``update_hitl_detail``: responder, time, chosen option,
then ``handle_event_submit`` with the row's resume payload). It also keeps the request's body, to
check what the approver was shown.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass
class Responder:
    """Answer the first request of ``dag_id``/``task_id`` that appears with ``option``.

    Use as a context manager around ``dag.test()``; ``body`` and ``answered`` are set once it
    answered.
    """

    dag_id: str
    task_id: str
    option: str = "Approve"
    user_id: str = "approver-id"
    user_name: str = "approver"
    timeout: float = 900.0
    body: str | None = None
    subject: str | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Responder:
        # Import and configure Airflow's ORM here, in the caller's thread: the responder querying
        # while dag.test() imports the same modules deadlocks on SQLAlchemy's mapper lock.
        import airflow.dag_processing.dagbag  # noqa: F401
        import airflow.models.hitl  # noqa: F401
        import airflow.models.trigger  # noqa: F401
        import airflow.serialization.serialized_objects  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
        self._thread = threading.Thread(target=self._run, name="hitl-responder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None and exc[0] is None:
            raise self.error

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self._respond_once():
                    self.answered.set()
                    return
                time.sleep(0.5)
        except BaseException as err:  # surfaced by __exit__, and now: dag.test() would wait forever
            self.error = err
            traceback.print_exc()

    def _respond_once(self) -> bool:
        from airflow.models.hitl import HITLUser
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance)
                .where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.task_id == self.task_id,
                    TaskInstance.state.in_([TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED]),
                )
                .options(joinedload(TaskInstance.hitl_detail))
            ).first()
            detail = ti.hitl_detail if ti is not None else None
            if detail is None or detail.response_received:
                return False
            self.body, self.subject = detail.body, detail.subject
            detail.responded_by = HITLUser(id=self.user_id, name=self.user_name)
            detail.responded_at = datetime.now(timezone.utc)
            detail.chosen_options = [self.option]
            detail.params_input = {}
            session.add(detail)
            handle_event_submit(
                TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
            )
        return True
