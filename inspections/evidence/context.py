"""What evidence operations use besides the database, so they can run without HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from service.settings import Settings
from service.storage import ObjectStore

if TYPE_CHECKING:
    from inspections.evidence.jobs import PhotoJobs


@dataclass(frozen=True)
class EvidenceContext:
    store: ObjectStore
    settings: Settings
    # This process's photo queue worker, handed each photo it received; None (a script, a
    # test) leaves the photo to be fetched back from the store by whichever worker claims it.
    jobs: PhotoJobs | None = None

    @classmethod
    def of(cls, state: Any) -> EvidenceContext:
        """From the app's state (service.state.AppState)."""
        return cls(store=state.store, settings=state.settings, jobs=state.photo_jobs)

    def hand_over(self, evidence_id: UUID, path: Path) -> bool:
        """Give a stored, queued photo's local copy to this process's worker; False when
        there is none (the caller removes the file)."""
        if self.jobs is None:
            return False
        self.jobs.keep(evidence_id, path)
        return True
