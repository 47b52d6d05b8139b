"""How a run executes its steps: one process per step, or all in the run worker's process.

Dagster's default executor starts a Python process per step, each importing Dagster and
loading the code location (seconds per step), and picks the in-process mode only from run
config. The automation sensor cannot set run config, and its runs are one dbt step and the
checks of the marts: every check in a process of its own cost more than the checks
themselves, and the dbt step's start-up is on the path from a dropped file to the marts. This
executor takes the same config as Dagster's default and, in addition, runs every step in the
run worker's process

- when the run carries ``EXECUTION_TAG: IN_PROCESS`` (which the automation sensor's runs
  carry, and any run launched from the UI may), or
- when its run config names no execution mode and at most one of its steps materializes
  assets: "Materialize" on one asset's page runs that asset's step and its checks, which
  depend on it and take a fraction of a second each; a process per check made a click on a
  raw asset take two minutes on a two-core machine. A run of several assets (a raw layer, the
  whole graph) keeps the configured mode, whose processes run independent steps in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.definitions.executor_definition import multi_or_in_process_executor
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.in_process import InProcessExecutor

if TYPE_CHECKING:
    from dagster._core.events import DagsterEvent
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan

#: The run tag that selects how the run's steps execute.
EXECUTION_TAG = "lakehouse/execution"
#: Its value for: every step in the run worker's process, one after another.
IN_PROCESS = "in_process"


class RunTagExecutor(dg.Executor):
    """The configured executor, or the in-process one for a run tagged ``IN_PROCESS``."""

    def __init__(self, configured: dg.Executor) -> None:
        self._configured = configured
        self._in_process = InProcessExecutor(
            retries=configured.retries,
            step_dependency_config=configured.step_dependency_config,
        )

    @property
    def retries(self) -> RetryMode:
        return self._configured.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._configured.step_dependency_config

    def chosen(
        self,
        tags: Mapping[str, str] | None,
        *,
        mode_configured: bool,
        materializing_steps: int,
    ) -> dg.Executor:
        """The executor for a run with these tags, whose run config names an execution mode
        or not, and with this many steps that materialize assets."""
        if (tags or {}).get(EXECUTION_TAG) == IN_PROCESS:
            return self._in_process
        if not mode_configured and materializing_steps <= 1:
            return self._in_process
        return self._configured

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        run = plan_context.dagster_run
        executor = self.chosen(
            run.tags,
            mode_configured=bool((run.run_config or {}).get("execution")),
            materializing_steps=materializing_steps(execution_plan),
        )
        yield from executor.execute(plan_context, execution_plan)


def materializing_steps(execution_plan: ExecutionPlan) -> int:
    """How many of the plan's steps to execute materialize an asset (a step of checks only,
    whose outputs are check results, does not)."""
    return sum(
        any(output.properties.asset_key is not None for output in step.step_outputs)
        for step in execution_plan.get_steps_to_execute_in_topo_order()
    )


@dg.executor(
    name="multi_or_in_process_by_tag",
    config_schema=multi_or_in_process_executor.config_schema.as_field(),
    requirements=multi_or_in_process_executor.get_requirements,
)
def run_tag_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's default executor (``multiprocess`` unless the run config says ``in_process``),
    except that a run tagged ``lakehouse/execution: in_process`` runs its steps in process."""
    create = multi_or_in_process_executor.executor_creation_fn
    assert create is not None
    return RunTagExecutor(create(init_context))
