"""Workflows: a TOML file -> data, model, sampling, checks, LOO -> a run folder with a report.

- :mod:`bayes.workflow.schema` -- the workflow file (pydantic), :func:`load_workflow`.
- :mod:`bayes.workflow.inputs` -- data selection and the model the file names.
- :mod:`bayes.workflow.run` -- :func:`run_workflow`, the run folder's contents.
- :mod:`bayes.workflow.folder` -- atomic writes; a run folder appears only when complete.
- :mod:`bayes.workflow.cli` -- ``cytofactory run`` and ``cytofactory compare``.

In the layering this package sits beside the command line (it uses :mod:`bayes.report`).
"""

from bayes.workflow.folder import RunFolderExistsError
from bayes.workflow.schema import LoadedWorkflow, Workflow, WorkflowError, load_workflow

__all__ = ["LoadedWorkflow", "RunFolderExistsError", "Workflow", "WorkflowError", "load_workflow"]
