"""pytest-xdist's `--dist loadgroup`, made safe for a worker that dies mid-run.

pytest-xdist 3.8.0 hangs the whole run when a worker process dies (a segfault, a SIGKILL) under
`loadgroup` scheduling: the dead worker's finished work units go back on the queue and are
handed out later as empty ones, and a new worker given a single test waits for a second that
never comes (pytest-dev/pytest-xdist#1323, #1327, #1378). The test it died on is also handed to
the replacement, which dies the same way (#1371), and a second death while the replacement is
still collecting fails the run. This scheduler differs in those places only: a dead worker's
finished tests and the test it died on (already reported as failed) are not run again, a
worker is always left holding two tests or told that there are no more, and a worker still
collecting waits for its turn, so a crash costs one failed test instead of the run.
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling
from xdist.workermanage import WorkerController


class CrashSafeLoadGroupScheduling(LoadGroupScheduling):
    def remove_node(self, node: WorkerController) -> str | None:
        workload = self.assigned_work.pop(node)
        pending = {scope: unit for scope, unit in workload.items() if not all(unit.values())}
        if not pending:
            return None
        unit = next(iter(pending.values()))
        crashitem = next(nodeid for nodeid, done in unit.items() if not done)
        unit[crashitem] = True  # reported as failed by the caller; never run again
        self.workqueue.update(pending)  # a unit that is now all done is skipped when its turn comes
        for other in self.assigned_work:
            self._reschedule(other)
        return crashitem

    def _reschedule(self, node: WorkerController) -> None:
        # A replacement still collecting (another worker died meanwhile) gets work once ready.
        if node.shutting_down or node not in self.registered_collections:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 2:
            return
        self._assign_work_unit(node)
        # A worker runs a test once it knows the next one (or that there is none): never leave
        # it holding a single test with nothing more coming.
        while self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            self._assign_work_unit(node)
        if not self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            node.shutdown()

    def _assign_work_unit(self, node: WorkerController) -> None:
        # Skip units with nothing left to run: sending an empty one would wait forever.
        while self.workqueue:
            scope, unit = next(iter(self.workqueue.items()))
            if not all(unit.values()):
                super()._assign_work_unit(node)
                return
            del self.workqueue[scope]
